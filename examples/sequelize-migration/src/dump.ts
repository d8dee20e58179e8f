// What a stolen backup holds: the table as pg_dump / mysqldump (mariadb-dump) write it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The table's data as the database's dump tool writes it. */
export async function dumpTable(databaseUrl: string, table: string): Promise<string> {
  const url = new URL(databaseUrl);
  const db = url.pathname.slice(1);
  if (url.protocol.startsWith("postgres")) {
    const { stdout } = await run("pg_dump", ["--data-only", `--table=${table}`, databaseUrl], {
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  }
  const args = [
    `--host=${url.hostname}`,
    `--port=${url.port || "3306"}`,
    `--user=${decodeURIComponent(url.username)}`,
    "--no-create-info",
    "--skip-extended-insert",
    db,
    table,
  ];
  // The password, if any, goes in the environment, not the argument list.
  const env = {
    ...process.env,
    ...(url.password ? { MYSQL_PWD: decodeURIComponent(url.password) } : {}),
  };
  const { stdout } = await run("mysqldump", args, { env, maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}
