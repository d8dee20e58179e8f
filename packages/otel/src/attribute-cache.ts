import type { Attributes } from "@opentelemetry/api";

/**
 * Attribute sets by a key the caller builds from the fields they are made of, so the hot
 * path (a warm decrypt takes microseconds) reuses one frozen object instead of building and
 * escaping a new one per event. Bounded: past `max` sets, new ones are built each time.
 */
export class AttributeCache {
  private readonly sets = new Map<string, Attributes>();

  constructor(private readonly max = 4096) {}

  get(key: string, build: () => Attributes): Attributes {
    const found = this.sets.get(key);
    if (found) return found;
    const made = Object.freeze(build());
    if (this.sets.size < this.max) this.sets.set(key, made);
    return made;
  }
}
