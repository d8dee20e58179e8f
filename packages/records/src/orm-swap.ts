type Row = Record<string, unknown>;

/**
 * The ORM integrations let the ORM write sealed values by putting them, for the length of
 * one write, in place of the plaintext the application set on its object (a Sequelize
 * instance's `dataValues`, a TypeORM entity), and putting the plaintext back once the write
 * is done. This remembers what was swapped, per object.
 *
 * A write that fails leaves the sealed values on the object (never plaintext in a column).
 * Saving that object again must not seal the sealed values a second time: `recover` puts
 * the plaintext back first, for each field that still holds exactly what was swapped in.
 */
export class Swaps {
  readonly #swapped = new WeakMap<object, { sealed: Row; plain: Row }>();

  /**
   * Writes `sealed` (sealed fields and their blind index columns) into `values`, remembering
   * the plaintext of the `encrypted` fields among them.
   */
  swapIn(owner: object, values: Row, sealed: Row, encrypted: readonly string[]): void {
    const plain: Row = {};
    const swapped: Row = {};
    for (const [k, v] of Object.entries(sealed)) {
      if (encrypted.includes(k)) {
        plain[k] = values[k];
        swapped[k] = v;
      }
      values[k] = v;
    }
    this.#swapped.set(owner, { sealed: swapped, plain });
  }

  /** Puts the plaintext back after the write (the ORM may have copied stored values over it). */
  restore(owner: object, values: Row): void {
    const swap = this.#swapped.get(owner);
    if (!swap) return;
    this.#swapped.delete(owner);
    for (const k of Object.keys(swap.sealed)) values[k] = swap.plain[k];
  }

  /** Before sealing again: the plaintext of fields a failed write left sealed. */
  recover(owner: object, values: Row): void {
    const swap = this.#swapped.get(owner);
    if (!swap) return;
    this.#swapped.delete(owner);
    for (const [k, v] of Object.entries(swap.sealed)) {
      if (values[k] === v) values[k] = swap.plain[k];
    }
  }
}
