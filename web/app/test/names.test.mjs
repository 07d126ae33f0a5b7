import { test } from "node:test";
import assert from "node:assert/strict";

import { labels, shared } from "../src/names.js";

test("participants with the same name are numbered in the order they joined", () => {
  const ps = [
    { id: "a", name: "Ada" },
    { id: "b", name: "Grace" },
    { id: "c", name: "ada " },
    { id: "d", name: "Ada" },
  ];
  const got = labels(ps);
  assert.deepEqual([...got.entries()], [
    ["a", "Ada"],
    ["b", "Grace"],
    ["c", "ada (2)"],
    ["d", "Ada (3)"],
  ]);
  assert.equal(shared(ps, ps[0]), true);
  assert.equal(shared(ps, ps[1]), false);
  // The first one leaves: the others keep their order, the next becomes the plain name.
  assert.deepEqual([...labels(ps.slice(1)).values()], ["Grace", "ada ", "Ada (2)"]);
});
