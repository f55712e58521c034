import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareVersions, makeVersion, snapshotVersion } from '../../core/event/version';
import {
  binlogPositionCodec, compareBinlogPositions, fileSequence, formatBinlogPosition, packBinlogPosition, parseBinlogPosition,
} from '../../connectors/mysql/binlog-position';
import { backlogBytes } from '../../connectors/mysql/binlog-stream';
import { parseCheckpoint, restoreKey, saveKey, serializeCheckpoint } from '../../connectors/mysql/checkpoint';
import { MariadbGtidState, MysqlGtidSet, parseGtidState, parseMariadbGtid, parseMysqlGtid } from '../../connectors/mysql/gtid';
import { packageRoot } from '../support/kafka';

const fixtures = JSON.parse(readFileSync(join(packageRoot(), 'test/fixtures/mysql/gtids.json'), 'utf8'));

describe('MySQL binlog positions', () => {
  it('round-trip through their text form, with and without a GTID of either flavour', () => {
    for (const text of [
      'binlog.000001:4',
      'mysql-bin.000042:1234@0-1-42',
      'binlog.1000000:4294967295@0-1-42,1-3-7',
      'host:name-bin.000003:99@3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11',
      'odd@name.000007:120',
    ]) {
      assert.equal(formatBinlogPosition(parseBinlogPosition(text)), text);
    }
    assert.deepEqual(parseBinlogPosition('binlog.000042:1234@0-1-42'), { file: 'binlog.000042', offset: 1234, gtid: '0-1-42' });
    assert.deepEqual(parseBinlogPosition('odd@name.000007:120'), { file: 'odd@name.000007', offset: 120 });
  });

  it('refuse malformed text with a message that shows the expected form', () => {
    for (const text of ['binlog.000001', 'binlog:4', 'binlog.000001:x', ':4', 'binlog.000001:-4']) {
      assert.throws(() => parseBinlogPosition(text), /malformed binlog position .*FILE:OFFSET\[@GTID\]/);
    }
  });

  it('order by file sequence number, then offset; the GTID plays no part', () => {
    const p = (text: string) => parseBinlogPosition(text);
    assert.equal(compareBinlogPositions(p('binlog.000009:99999'), p('binlog.000010:4')), -1);
    assert.equal(compareBinlogPositions(p('binlog.000010:4'), p('binlog.000009:99999')), 1);
    assert.equal(compareBinlogPositions(p('binlog.999999:4'), p('binlog.1000000:4')), -1, 'MariaDB widens the extension past 999999');
    assert.equal(compareBinlogPositions(p('binlog.000002:120@0-1-5'), p('binlog.000002:120@0-1-9')), 0);
    assert.equal(binlogPositionCodec.compare(p('binlog.000002:119'), p('binlog.000002:120')), -1);
    assert.throws(() => compareBinlogPositions(p('a.000001:4'), p('b.000001:4')), /different binlog series: a.000001 vs b.000001/);
    assert.equal(fileSequence('mysql-bin.000042'), 42);
  });

  it('pack into integers (and versions) that order exactly like the positions, across file rotations', () => {
    const texts = ['binlog.000001:4', 'binlog.000001:256', 'binlog.000001:1099511627775', 'binlog.000002:4', 'binlog.000002:5', 'binlog.000010:4', 'binlog.8388607:4'];
    const positions = texts.map(parseBinlogPosition);
    for (let i = 0; i + 1 < positions.length; i++) {
      assert.ok(packBinlogPosition(positions[i]) < packBinlogPosition(positions[i + 1]), `${texts[i]} < ${texts[i + 1]}`);
      assert.equal(compareVersions(makeVersion(packBinlogPosition(positions[i]), 0xffffffff), snapshotVersion(packBinlogPosition(positions[i + 1]))), -1);
    }
    assert.ok(packBinlogPosition(positions[positions.length - 1]) < 2n ** 63n, 'stays below 2^63 for Elasticsearch external versions');
    assert.throws(() => packBinlogPosition({ file: 'binlog.8388608', offset: 4 }), /sequence number above 8388607/);
    assert.throws(() => packBinlogPosition({ file: 'binlog.000001', offset: 2 ** 40 }), /does not fit in 40 bits/);
  });
});

describe('MySQL binlog backlog', () => {
  it('counts the rest of the acknowledged file and every later file (SHOW BINARY LOGS sizes)', () => {
    const logs = [{ file: 'binlog.000001', size: 5000 }, { file: 'binlog.000002', size: 1000 }, { file: 'binlog.000003', size: 400 }];
    assert.equal(backlogBytes(logs, { file: 'binlog.000002', offset: 600 }), 400 + 400);
    assert.equal(backlogBytes(logs, { file: 'binlog.000003', offset: 400 }), 0);
    assert.equal(backlogBytes(logs, { file: 'binlog.000001', offset: 4 }), 4996 + 1000 + 400);
  });
});

describe('MySQL source checkpoints', () => {
  it('are the plain position while streaming and JSON with the progress during a snapshot', () => {
    const streaming = { position: parseBinlogPosition('binlog.000003:4@0-1-42') };
    assert.equal(serializeCheckpoint(streaming), 'binlog.000003:4@0-1-42');
    assert.deepEqual(parseCheckpoint('binlog.000003:4@0-1-42'), streaming);

    const key = saveKey([Buffer.from([0, 255, 1]), '9007199254740993', 7, null]);
    assert.deepEqual(key, [{ base64: 'AP8B' }, '9007199254740993', 7, null]);
    const snapshotting = {
      position: parseBinlogPosition('binlog.000003:4@0-1-42'),
      snapshot: { position: parseBinlogPosition('binlog.000003:4@0-1-42'), tables: { 'shop.a': { done: true, rows: 3, afterKey: [3] }, 'shop.b': { done: false, rows: 10, afterKey: key } } },
    };
    const text = serializeCheckpoint(snapshotting);
    assert.deepEqual(parseCheckpoint(text), snapshotting);
    assert.deepEqual(restoreKey(parseCheckpoint(text).snapshot!.tables['shop.b'].afterKey!), [Buffer.from([0, 255, 1]), '9007199254740993', 7, null]);
    assert.throws(() => parseCheckpoint('{"position":'), /malformed MySQL source checkpoint/);
  });
});

describe('GTIDs', () => {
  it('parse MariaDB GTIDs (domain-server-sequence) exactly, up to 64-bit sequences', () => {
    for (const f of fixtures.mariadbGtids) {
      assert.deepEqual(parseMariadbGtid(f.text), { domain: f.domain, server: f.server, sequence: BigInt(f.sequence) });
    }
  });

  it('keep the last GTID per MariaDB domain, as @@gtid_binlog_pos does', () => {
    for (const f of fixtures.mariadbPositions) {
      const state = MariadbGtidState.parse(f.text);
      state.add(f.then);
      assert.equal(state.toString(), f.expect, `${f.text} + ${f.then}`);
    }
    assert.throws(() => MariadbGtidState.parse('0-1-1,0-2-2'), /domain 0 appears twice/);
  });

  it('parse MySQL GTIDs (uuid:n, and uuid:tag:n of MySQL 8.3+)', () => {
    for (const f of fixtures.mysqlGtids) {
      assert.deepEqual(parseMysqlGtid(f.text), { uuid: f.uuid, tag: f.tag, gno: BigInt(f.gno) });
    }
  });

  it('merge MySQL GTIDs into sets of intervals in the canonical text form', () => {
    for (const f of fixtures.mysqlSets) {
      const set = MysqlGtidSet.parse(f.text);
      set.add(f.then);
      assert.equal(set.toString(), f.expect, `${JSON.stringify(f.text)} + ${f.then}`);
      assert.ok(set.contains(f.then));
      assert.equal(MysqlGtidSet.parse(set.toString()).toString(), f.expect, 'the canonical form parses back to itself');
    }
  });

  it('tell the flavours apart by their form and refuse malformed ones', () => {
    assert.ok(parseGtidState('0-1-5,1-1-2') instanceof MariadbGtidState);
    assert.ok(parseGtidState('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5') instanceof MysqlGtidSet);
    for (const text of fixtures.malformed) {
      assert.throws(() => (text.includes(':') || text.length > 20 ? parseMysqlGtid(text) : parseMariadbGtid(text)), /malformed (MySQL|MariaDB) GTID/, text);
    }
  });
});
