// The throwaway servers the fault suite shares across its cases (one at a time):
// a source Postgres, a MariaDB, Redis, the Elasticsearch test server, the Kafka
// mock (its topics made up front, one per case) and a Postgres for the
// warehouse-outage case. Each is started only when a planned case needs it.
import { EsServer, startEsServer } from '../support/es-server';
import {
  KafkaMock, MariadbServer, PgServer, RedisServer, startKafkaMock, startMariadb, startPostgres, startRedis, stopAll,
} from '../support/servers';

export interface LabNeeds {
  postgres: boolean;
  mariadb: boolean;
  warehousePostgres: boolean;
  /** Service names of the cases on the Kafka log (topic `<name>.changes` each). */
  kafkaServices: string[];
  partitions: number;
}

export class Lab {
  pg?: PgServer;
  mariadb?: MariadbServer;
  warehousePg?: PgServer;
  redis!: RedisServer;
  es!: EsServer;
  kafka?: KafkaMock;

  async start(needs: LabNeeds): Promise<void> {
    const settings = { max_connections: '200', wal_sender_timeout: '60s' };
    const [pg, mariadb, warehousePg, redis, es, kafka] = await Promise.all([
      needs.postgres ? startPostgres({ settings }) : undefined,
      // 50 MB values need a packet above them; a start option, so every restart keeps it.
      needs.mariadb ? startMariadb({ args: ['--max-allowed-packet=1G'] }) : undefined,
      needs.warehousePostgres ? startPostgres() : undefined,
      startRedis(),
      startEsServer(),
      needs.kafkaServices.length
        ? startKafkaMock({ brokers: 3, topics: needs.kafkaServices.map((name) => ({ name: `${name}.changes`, partitions: needs.partitions })) })
        : undefined,
    ]);
    Object.assign(this, { pg, mariadb, warehousePg, redis, es, kafka });
  }

  /**
   * Starts again any server a case left stopped (a restart that failed, an outage
   * cut short by an error), so one broken case does not fail every case after it.
   */
  async restartStopped(): Promise<string[]> {
    const servers = { postgres: this.pg, mariadb: this.mariadb, 'warehouse postgres': this.warehousePg, redis: this.redis };
    const restarted: string[] = [];
    for (const [name, server] of Object.entries(servers)) {
      if (!server || server.pid !== undefined) continue;
      await server.start();
      restarted.push(name);
    }
    return restarted;
  }

  async stop(): Promise<void> {
    await stopAll();
  }
}
