import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { labelValue, selectorIsEmpty, selectorMatches, selectorSignature } from "../../controller/api/selectors.ts";
import type { LabelSelector, LabelSelectorRequirement } from "../../controller/api/types.ts";

const db = { app: "shop", tier: "db" };

describe("label selectors", () => {
  it("match when every matchLabels pair is present with the same value", () => {
    assert.equal(selectorMatches({ matchLabels: { app: "shop", tier: "db" } }, db), true);
    assert.equal(selectorMatches({ matchLabels: { app: "shop", tier: "web" } }, db), false);
    assert.equal(selectorMatches({ matchLabels: { zone: "z1" } }, db), false);
  });

  it("match everything when empty", () => {
    assert.equal(selectorMatches({}, db), true);
    assert.equal(selectorMatches({ matchLabels: {}, matchExpressions: [] }, {}), true);
    assert.equal(selectorIsEmpty({ matchLabels: {}, matchExpressions: [] }), true);
    assert.equal(selectorIsEmpty({ matchLabels: { app: "shop" } }), false);
  });

  it("In requires the label with one of the values", () => {
    const tierIn = (values: string[]): LabelSelector => ({ matchExpressions: [{ key: "tier", operator: "In", values }] });
    assert.equal(selectorMatches(tierIn(["web", "db"]), db), true);
    assert.equal(selectorMatches(tierIn(["web"]), db), false);
    assert.equal(selectorMatches(tierIn(["db"]), { app: "shop" }), false);
  });

  it("NotIn excludes the values and accepts a missing label, as in Kubernetes", () => {
    const tierNotIn: LabelSelector = { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] };
    assert.equal(selectorMatches(tierNotIn, db), false);
    assert.equal(selectorMatches(tierNotIn, { tier: "web" }), true);
    assert.equal(selectorMatches(tierNotIn, { app: "shop" }), true);
  });

  it("Exists and DoesNotExist look at the key only", () => {
    const exists: LabelSelector = { matchExpressions: [{ key: "tier", operator: "Exists" }] };
    const absent: LabelSelector = { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] };
    assert.equal(selectorMatches(exists, db), true);
    assert.equal(selectorMatches(exists, { app: "shop" }), false);
    assert.equal(selectorMatches(absent, db), false);
    assert.equal(selectorMatches(absent, { app: "shop" }), true);
    assert.equal(selectorMatches(exists, { tier: "" }), true, "an empty value is still a value");
  });

  it("ANDs matchLabels with every expression", () => {
    const selector: LabelSelector = {
      matchLabels: { app: "shop" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["db", "cache"] },
        { key: "canary", operator: "DoesNotExist" },
      ],
    };
    assert.equal(selectorMatches(selector, db), true);
    assert.equal(selectorMatches(selector, { ...db, canary: "yes" }), false);
    assert.equal(selectorMatches(selector, { ...db, app: "blog" }), false);
  });

  it("never matches by accident on malformed requirements", () => {
    const inNothing: LabelSelector = { matchExpressions: [{ key: "tier", operator: "In", values: [] }] };
    const notInNothing: LabelSelector = { matchExpressions: [{ key: "tier", operator: "NotIn" }] };
    const unknown = { matchExpressions: [{ key: "tier", operator: "Gt", values: ["1"] } as unknown as LabelSelectorRequirement] };
    assert.equal(selectorMatches(inNothing, db), false);
    assert.equal(selectorMatches(notInNothing, db), true);
    assert.equal(selectorMatches(unknown, db), false);
  });

  it("treat inherited object properties as absent labels", () => {
    assert.equal(labelValue({}, "constructor"), undefined);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "constructor", operator: "Exists" }] }, {}), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: "toString", operator: "DoesNotExist" }] }, {}), true);
  });

  it("give equal signatures to selectors that differ only in order", () => {
    const a: LabelSelector = {
      matchLabels: { app: "shop", tier: "db" },
      matchExpressions: [
        { key: "zone", operator: "In", values: ["z1", "z2"] },
        { key: "canary", operator: "DoesNotExist" },
      ],
    };
    const b: LabelSelector = {
      matchLabels: { tier: "db", app: "shop" },
      matchExpressions: [
        { key: "canary", operator: "DoesNotExist" },
        { key: "zone", operator: "In", values: ["z2", "z1", "z2"] },
      ],
    };
    assert.equal(selectorSignature(a), selectorSignature(b));
    assert.notEqual(selectorSignature(a), selectorSignature({ ...a, matchLabels: { app: "shop" } }));
    assert.notEqual(
      selectorSignature({ matchExpressions: [{ key: "zone", operator: "In", values: ["z1"] }] }),
      selectorSignature({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["z1"] }] }),
    );
  });

  it("selectors with equal signatures match exactly the same label sets", () => {
    const key = fc.constantFrom("app", "tier", "zone");
    const value = fc.constantFrom("a", "b", "c");
    const requirement = fc.record({
      key,
      operator: fc.constantFrom<LabelSelectorRequirement["operator"]>("In", "NotIn", "Exists", "DoesNotExist"),
      values: fc.array(value, { maxLength: 3 }),
    });
    const selector = fc.record({ matchLabels: fc.dictionary(key, value), matchExpressions: fc.array(requirement, { maxLength: 3 }) });
    const labels = fc.dictionary(key, value);
    fc.assert(
      fc.property(selector, fc.array(labels, { minLength: 1, maxLength: 8 }), (s, labelSets) => {
        const reordered: LabelSelector = {
          matchLabels: Object.fromEntries(Object.entries(s.matchLabels).reverse()),
          matchExpressions: [...s.matchExpressions].reverse().map((r) => ({ ...r, values: [...r.values].reverse() })),
        };
        assert.equal(selectorSignature(reordered), selectorSignature(s));
        for (const l of labelSets) assert.equal(selectorMatches(reordered, l), selectorMatches(s, l));
      }),
    );
  });
});
