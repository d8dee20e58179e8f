/**
 * Which databases a multi-database scenario runs on: every one its list names, unless
 * ENVELOPE_TEST_DATABASES names some (comma-separated, any case: postgresql, mariadb,
 * pglite). CI's reruns on Node 22 and 24 set `postgresql`: the README's command on Node 20
 * runs every dialect, and the SQL dialects do not change with Node. An unknown name fails
 * the run rather than quietly running nothing.
 */
const KNOWN = ["postgresql", "mariadb", "pglite"];

type Case = { readonly name: string } | readonly [string, ...unknown[]];

export function selectDatabases<T extends Case>(
  cases: readonly T[],
  env: { ENVELOPE_TEST_DATABASES?: string } = process.env,
): T[] {
  const wanted = env.ENVELOPE_TEST_DATABASES;
  if (!wanted) return [...cases];
  const names = wanted.split(",").map((n) => n.trim().toLowerCase());
  const unknown = names.filter((n) => !KNOWN.includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `ENVELOPE_TEST_DATABASES: unknown ${unknown.join(", ")}; use ${KNOWN.join(", ")}`,
    );
  }
  const nameOf = (c: Case) => ("name" in c ? c.name : c[0]).toLowerCase();
  return cases.filter((c) => names.includes(nameOf(c)));
}
