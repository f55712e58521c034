// Decodes a range of a throwaway MariaDB's binlog with a given BinlogDecoder:
// every event from `from` up to the first heartbeat after the end (the
// server sends one once it has nothing more). Used to compare the native rows
// decoder with the zongji one on the same bytes.
import { BinlogDecoder, DecodedEvent } from '../../connectors/mysql/binlog-decoder';
import { BinlogPosition } from '../../connectors/mysql/binlog-position';
import { parseMysqlUrl } from '../../connectors/mysql/connection';
import { MariadbServer } from './mariadb';
import { mariadbQuery } from './mariadb';

export async function decodeBinlog(server: MariadbServer, decoder: BinlogDecoder, from: BinlogPosition, tables: string[], serverId = 4242): Promise<DecodedEvent[]> {
  const events: DecodedEvent[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      decoder
        .start({
          connection: parseMysqlUrl(server.url),
          serverId,
          from,
          tables,
          heartbeatIntervalMs: 300,
          onEvent: (event) => (event.kind === 'heartbeat' ? resolve() : events.push(event)),
          onError: reject,
        })
        .catch(reject);
    });
  } finally {
    await decoder.stop();
  }
  return events;
}

/** Where the binlog ends now. */
export async function binlogEnd(server: MariadbServer): Promise<BinlogPosition> {
  const [file, offset] = (await mariadbQuery(server.port, 'SHOW MASTER STATUS')).trim().split('\t');
  return { file, offset: Number(offset) };
}
