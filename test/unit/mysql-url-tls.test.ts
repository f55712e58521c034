import { strict as assert } from 'node:assert';
import { parseMysqlUrl } from '../../connectors/mysql/connection';
import { makeCa } from '../support/tls-ca';

describe('MySQL URL: TLS query options', () => {
  const ca = makeCa();
  const client = ca.issue('client', { client: true, commonName: 'cdc' });

  it('ssl-mode, ssl-ca, ssl-cert, ssl-key become mysql2 TLS settings (PEM read from the files)', () => {
    const options = parseMysqlUrl(`mysql://cdc:pw@db.example:3307/?ssl-mode=VERIFY_CA&ssl-ca=${ca.caFile}&ssl-cert=${client.certFile}&ssl_key=${client.keyFile}`);
    assert.equal(options.host, 'db.example');
    assert.equal(options.sslCaFile, ca.caFile);
    assert.match(options.ssl!.ca!, /^-----BEGIN CERTIFICATE-----/);
    assert.match(options.ssl!.cert!, /^-----BEGIN CERTIFICATE-----/);
    assert.match(options.ssl!.key!, /PRIVATE KEY-----/);
    assert.equal(options.ssl!.rejectUnauthorized, true);
    assert.equal(options.ssl!.verifyIdentity, false, 'VERIFY_CA checks the chain, not the name');
  });

  it('modes: REQUIRED encrypts without checks, VERIFY_IDENTITY is the default with a CA, DISABLED turns the config ssl off', () => {
    assert.deepEqual(parseMysqlUrl('mysql://u@h/?ssl-mode=required').ssl, { rejectUnauthorized: false, verifyIdentity: false });
    const fromConfig = parseMysqlUrl('mysql://u@h/', { ca: ca.caFile });
    assert.equal(fromConfig.ssl!.verifyIdentity, true);
    assert.equal(fromConfig.ssl!.rejectUnauthorized, true);
    assert.equal(parseMysqlUrl('mysql://u@h/?ssl-mode=DISABLED', { ca: ca.caFile }).ssl, undefined, 'the URL wins over the config');
    assert.equal(parseMysqlUrl('mysql://u@h/').ssl, undefined, 'plain text unless asked');
  });

  it('refuses what it would otherwise drop silently: unknown options, PREFERRED, unreadable files', () => {
    assert.throws(() => parseMysqlUrl('mysql://u@h/?charset=latin1'), /MySQL URL option "charset" is not supported; the URL takes ssl-mode, ssl-ca, ssl-cert, ssl-key/);
    assert.throws(() => parseMysqlUrl('mysql://u@h/?ssl-mode=PREFERRED'), /PREFERRED.*not supported.*REQUIRED, VERIFY_CA or VERIFY_IDENTITY/);
    assert.throws(() => parseMysqlUrl('mysql://u@h/?ssl-mode=ON'), /ssl-mode=ON is not one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY/);
    assert.throws(() => parseMysqlUrl('mysql://u@h/?ssl-ca=/nonexistent/ca.pem'), /ssl-ca: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
  });
});
