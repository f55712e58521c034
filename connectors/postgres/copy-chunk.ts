import { Client, escapeLiteral } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { CopyTextParser } from './copy-text';

/**
 * Runs `COPY (query) TO STDOUT` and hands each row's fields (the values' text,
 * null for NULL) to `onRow` as they stream in. COPY takes no bind parameters:
 * build `query` with copyLiteral() for every value in it.
 */
export function copyRows(client: Client, query: string, columns: number, onRow: (fields: (string | null)[]) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const parser = new CopyTextParser(columns, onRow);
    const stream = client.query(copyTo(`COPY (${query}) TO STDOUT`));
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      stream.destroy();
      reject(error);
    };
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        parser.push(chunk);
      } catch (error) {
        fail(error);
      }
    });
    stream.on('error', fail);
    stream.on('end', () => {
      if (failed) return;
      try {
        parser.end();
        resolve();
      } catch (error) {
        fail(error);
      }
    });
  });
}

/** A value as an SQL string literal (quotes doubled; backslashes as E'...'), the only safe way to put a key into COPY's query. */
export function copyLiteral(value: string): string {
  return escapeLiteral(value);
}
