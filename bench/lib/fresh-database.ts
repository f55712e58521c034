// A benchmark's own database on a shared throwaway server: dropped (with its
// slots and connections) and created again, so every run starts empty.
import { Client } from 'pg';

async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** Drops and creates database `name` on the server of `serverUrl`; resolves with its URL. */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  return serverUrl.replace(/\/[^/]*$/, `/${name}`);
}

/** Drops database `name` (its replication slots go with it). */
export const dropDatabase = (serverUrl: string, name: string) => adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
