-- The quick start's MariaDB schema and a binlog reader user.
CREATE TABLE legacy.products (id int PRIMARY KEY, name varchar(200) NOT NULL, price decimal(10,2));
INSERT INTO legacy.products VALUES (1, 'kettle', 24.90), (2, 'teapot', 31.00);
CREATE USER 'cdc'@'%' IDENTIFIED BY 'cdc-password';
GRANT SELECT, RELOAD, REPLICATION CLIENT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc'@'%';
