import { describe, expect, it } from "vitest";
import type { WrappedKey } from "../src/format/envelope.js";
import { planRewrap, type RewrapTarget, rewrappedEntries } from "../src/rewrap/plan.js";

// The planner sees key descriptions only: no provider, no KMS, no data key.
const entry = (providerId: string, keyRef: string): WrappedKey => ({
  providerId,
  keyRef,
  wrapped: Buffer.from(`${providerId}/${keyRef}`),
});
const target = (id: string, keyRef: string, native = false): RewrapTarget => ({
  id,
  keyRef,
  handles: (e) => e.providerId === id,
  ...(native ? { rewrap: async (e: WrappedKey) => e } : {}),
});

const oldAws = entry("aws-kms", "key/old");
const rsa = entry("local-rsa", "sha256:aa");
const newAws = target("aws-kms", "key/new", true);
const newAwsLocalOnly = target("aws-kms", "key/new");
const rsaTarget = target("local-rsa", "sha256:aa");
const azure = target("azure-kv", "k/1", true);

describe("planRewrap: keep / native / local per target", () => {
  it.each([
    {
      name: "a KMS with native rewrap and an entry of its own: native from that entry",
      entries: [oldAws],
      targets: [newAws],
      want: [{ action: "native", source: oldAws }],
    },
    {
      name: "the same target without native rewrap: wrapped here",
      entries: [oldAws],
      targets: [newAwsLocalOnly],
      want: [{ action: "local" }],
    },
    {
      name: "native rewrap but no entry of that provider: wrapped here",
      entries: [rsa],
      targets: [azure],
      want: [{ action: "local" }],
    },
    {
      name: "entries exactly the targets: kept, no proof (nothing is dropped)",
      entries: [rsa],
      targets: [rsaTarget],
      want: [{ action: "keep", entry: rsa, proof: false, otherwise: { action: "local" } }],
    },
    {
      name: "one entry kept beside one dropped: the kept one needs proof",
      entries: [rsa, oldAws],
      targets: [rsaTarget, newAws],
      want: [
        { action: "keep", entry: rsa, proof: true, otherwise: { action: "local" } },
        { action: "native", source: oldAws },
      ],
    },
  ])("$name", ({ entries, targets, want }) => {
    const plan = planRewrap(entries, targets);
    expect(plan.map(({ target: _t, ...step }) => step)).toEqual(want);
    expect(plan.map((s) => s.target)).toEqual(targets);
  });

  it("keep: nothing is dropped, so an entry already under its target needs no proof", () => {
    const plan = planRewrap([rsa, oldAws], [rsaTarget], { keep: true });
    expect(plan).toEqual([
      {
        action: "keep",
        target: rsaTarget,
        entry: rsa,
        proof: false,
        otherwise: { action: "local" },
      },
    ]);
  });

  it("force: an entry already under the target is rewrapped (native from itself is not allowed)", () => {
    const current = entry("aws-kms", "key/new");
    const plan = planRewrap([current, oldAws], [newAws], { force: true });
    // Force makes no entry "current", so the first entry of the provider is the source.
    expect(plan).toEqual([{ action: "native", target: newAws, source: current }]);
  });

  it("without force, the native source is never the entry kept for the same target", () => {
    const current = entry("aws-kms", "key/new");
    const plan = planRewrap([current, oldAws], [newAws]);
    expect(plan).toEqual([
      {
        action: "keep",
        target: newAws,
        entry: current,
        proof: true,
        otherwise: { action: "native", source: oldAws },
      },
    ]);
  });

  it("an entry whose key ref matches but that the target does not handle is still the current one", () => {
    // Matching is by provider id and key reference; `handles` only picks native sources.
    const picky = { ...newAws, handles: () => false };
    const current = entry("aws-kms", "key/new");
    const [step] = planRewrap([current, oldAws], [picky]);
    expect(step).toMatchObject({ action: "keep", entry: current, otherwise: { action: "local" } });
  });
});

describe("rewrappedEntries", () => {
  const fresh = [entry("aws-kms", "key/new")];

  it("replaces the old entries by default", () => {
    expect(rewrappedEntries([oldAws, rsa], fresh, false)).toEqual(fresh);
  });

  it("with keep, adds the old entries whose key no new entry names, after the new ones", () => {
    const again = entry("local-rsa", "sha256:aa");
    expect(rewrappedEntries([oldAws, rsa], [...fresh, again], true)).toEqual([
      ...fresh,
      again,
      oldAws,
    ]);
  });
});
