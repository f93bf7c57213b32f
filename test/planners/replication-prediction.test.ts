// The link prediction: syncs share a link evenly (max-min fair), so on a link that cannot carry every VM's
// writes, only the VMs writing above the fair share fall behind their RPO — those, and only those, are told.

import { test } from "node:test";
import assert from "node:assert/strict";
import { fairShare } from "../../controller/planners/cluster/replication.ts";

test("the fair share is unbounded while the link carries every flow, and the water level once it cannot", () => {
  assert.equal(fairShare([1, 2, 3], 10), Infinity);
  assert.equal(fairShare([4, 4, 4, 4], 10), 2.5);
  // Two small flows get what they want; the two big ones split the rest.
  assert.equal(fairShare([0.5, 0.5, 8, 8], 10), 4.5);
  assert.equal(fairShare([], 10), Infinity);
});

test("the bench's mix: 100 bursty VMs above the share are the only ones behind on a link 5 % too slow", () => {
  const rates = [...Array(300).fill(0.02), ...Array(400).fill(0.12), ...Array(200).fill(0.25), ...Array(100).fill(1)];
  const total = rates.reduce((a, b) => a + b, 0);
  const share = fairShare(rates, total * 0.95);
  assert.equal(rates.filter((r) => r > share).length, 100);
});
