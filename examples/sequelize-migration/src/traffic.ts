// Live traffic while the app is switched and migrated: one loop of signups, reads and email
// changes against whichever app is current, checking every read against what was written.
import { randomInt } from "node:crypto";
import type { UserStore } from "./users.js";

interface Expected {
  name: string;
  email: string | null;
  ssn: string | null;
}

export interface TrafficReport {
  ops: number;
  reads: number;
  writes: number;
  /** Reads that returned something other than what was last written (must stay 0). */
  mismatches: number;
  /** Failed operations by error code (must stay empty). */
  errors: Record<string, number>;
}

export class Traffic {
  readonly expected = new Map<string, Expected>();
  readonly #report: TrafficReport = { ops: 0, reads: 0, writes: 0, mismatches: 0, errors: {} };
  #running: Promise<void> | undefined;
  #inFlight: Promise<void> | undefined;
  #stop = false;
  #serial = 0;

  constructor(private readonly current: () => UserStore) {}

  /** Adds a user known to exist (seeded before the traffic starts). */
  know(id: string, user: Expected): void {
    this.expected.set(id, user);
  }

  start(): void {
    this.#running = this.#loop();
  }

  /**
   * Resolves when the operation in flight now has finished: after a switch, the old app's
   * connections may be closed only then (a real app drains its requests the same way).
   */
  async drain(): Promise<void> {
    await this.#inFlight?.catch(() => {});
  }

  async stop(): Promise<TrafficReport> {
    this.#stop = true;
    await this.#running;
    return structuredClone(this.#report);
  }

  async #loop(): Promise<void> {
    while (!this.#stop) {
      try {
        this.#inFlight = this.#one();
        await this.#inFlight;
      } catch (error) {
        const code = (error as { code?: string }).code ?? (error as Error).name ?? "Error";
        this.#report.errors[code] = (this.#report.errors[code] ?? 0) + 1;
      }
      this.#report.ops++;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  async #one(): Promise<void> {
    const users = this.current();
    const ids = [...this.expected.keys()];
    const roll = randomInt(10);
    if (roll < 2 || ids.length === 0) {
      const user = fakeUser(++this.#serial);
      this.expected.set(await users.create(user), user);
      this.#report.writes++;
      return;
    }
    const id = ids[randomInt(ids.length)]!;
    if (roll < 7) {
      const got = await users.get(id);
      const want = this.expected.get(id)!;
      this.#report.reads++;
      if (!got || got.name !== want.name || got.email !== want.email || got.ssn !== want.ssn) {
        this.#report.mismatches++;
      }
      return;
    }
    const email = `changed-${++this.#serial}@example.com`;
    await users.changeEmail(id, email);
    this.expected.set(id, { ...this.expected.get(id)!, email });
    this.#report.writes++;
  }
}

/** A made-up person: recognisable in a dump, never a real SSN (900-series). */
export function fakeUser(n: number): Expected {
  return {
    name: `User ${n}`,
    email: `user-${n}-${randomInt(1e6)}@example.com`,
    ssn: `9${String(randomInt(10, 99))}-${String(randomInt(10, 99))}-${String(randomInt(1000, 9999))}`,
  };
}
