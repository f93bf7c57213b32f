// Fault tolerance and conversions over hostsim's HTTP API, in-process on the virtual clock: the client
// protects, moves and drops a secondary, sees a switch-over, converts a VM, and every observation is the
// simulator's own; refusals keep their codes; bodies without the right shape are refused before the
// simulator sees them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { FT_GO_LIVE_MS } from "../../../controller/core/fault-tolerance.ts";
import { guest, hostConfig, refusal } from "../../support/migration.ts";
import { asKvm, conversion, conversionOf, esxVm, ft, secondaryOf } from "../sim/fault-tolerance-support.ts";
import { serveInProcess, TOKEN } from "./hostsim-support.ts";

async function serve(t: TestContext) {
  const served = await serveInProcess(t);
  for (const name of ["h1", "h2", "h3"]) await served.client.registerHost(name, hostConfig());
  await served.client.registerHost("k1", hostConfig({ hypervisor: "kvm" }));
  return served;
}

function send(url: string, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("fault tolerance and conversions over hostsim's API", () => {
  it("protects a VM, moves its secondary, sees it go live when the primary's host crashes, and drops the next one, all through the client", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.startVm("shop/db", "h1", guest(4096));
    await clock.advance(sim.timings.bootMs);
    await client.protectVm("shop/db", "h2", { key: "p1", settings: ft() });
    await client.protectVm("shop/db", "h2", { key: "p1", settings: ft() });
    assert.equal((await secondaryOf(client, "shop/db"))?.state, "Copying");
    assert.deepEqual(await client.observe(), await sim.observe());
    await clock.advance(40_000);
    assert.equal((await secondaryOf(client, "shop/db"))?.state, "Lockstep");

    await client.protectVm("shop/db", "h3", { key: "p2", settings: ft() });
    assert.deepEqual((await client.groundTruth()).secondaries, [{ vm: "shop/db", host: "h3", state: "Copying" }, { vm: "shop/db", host: "h2", state: "Lockstep" }]);
    await clock.advance(40_000);
    assert.deepEqual([(await secondaryOf(client, "shop/db"))?.host, (await secondaryOf(client, "shop/db"))?.state], ["h3", "Lockstep"]);

    await client.crashHost("h1");
    await clock.advance(FT_GO_LIVE_MS);
    const observation = await client.observe();
    assert.deepEqual(observation, await sim.observe());
    assert.deepEqual(observation.vms.map((vm) => [vm.host, vm.power]), [["h3", "Running"]]);
    assert.deepEqual(observation.switchovers?.map((s) => [s.from, s.to]), [["h1", "h3"]]);
    const truth = await client.groundTruth();
    assert.deepEqual([truth.switchovers.map((s) => s.lostMiB), truth.goLiveRefused, truth.twoPrimaries], [[0], 0, 0]);

    await client.protectVm("shop/db", "h2", { key: "p3", settings: ft() });
    await client.unprotectVm("shop/db");
    await client.unprotectVm("shop/db");
    assert.deepEqual((await client.observe()).secondaries, []);
  });

  it("converts a VM with its NIC models and firmware across the wire, and keeps them", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.startVm("shop/db", "h1", esxVm());
    await clock.advance(sim.timings.bootMs);
    assert.deepEqual((await client.observe()).vms[0]!.config, esxVm(), "NIC models and firmware came over the wire");
    assert.equal(await refusal(client.convertVm("shop/db", "k1", asKvm(esxVm()), conversion())), "Conflict", "it still runs");
    await client.stopVm("shop/db", "PowerOff");
    await client.convertVm("shop/db", "k1", asKvm(esxVm()), conversion());
    await client.convertVm("shop/db", "k1", asKvm(esxVm()), conversion());
    assert.equal((await conversionOf(client, "shop/db"))?.phase, "Converting");
    assert.equal(await refusal(client.startVm("shop/db", "h1", esxVm())), "Conflict");
    await clock.advance(300_000);
    assert.deepEqual(await client.observe(), await sim.observe());
    assert.equal((await conversionOf(client, "shop/db"))?.phase, "Succeeded");
    const vm = (await client.observe()).vms[0]!;
    assert.deepEqual([vm.host, vm.power, vm.config], ["k1", "Off", asKvm(esxVm())]);
  });

  it("carries the simulator's refusals: NotFound, Conflict, Incompatible, Invalid", async (t) => {
    const { clock, sim, client } = await serve(t);
    assert.equal(await refusal(client.protectVm("shop/nobody", "h2", { key: "p", settings: ft() })), "NotFound");
    await client.startVm("shop/db", "h1", guest(4096));
    await clock.advance(sim.timings.bootMs);
    assert.equal(await refusal(client.protectVm("shop/db", "h1", { key: "p", settings: ft() })), "Conflict");
    assert.equal(await refusal(client.protectVm("shop/db", "k1", { key: "p", settings: ft() })), "Incompatible", "another hypervisor");
    assert.equal(await refusal(client.protectVm("shop/db", "h2", { key: "p", settings: ft({ copy: { ...ft().copy, maxRounds: 1.5 } }) })), "Invalid");
    assert.equal(await refusal(client.convertVm("shop/db", "h2", esxVm(), conversion())), "Conflict");
    // A stop bound to a host the VM is not on leaves it running: it was planned from an older observation.
    assert.equal(await refusal(client.stopVm("shop/db", "PowerOff", { onHost: "h2" })), "Conflict");
    assert.equal((await client.observe()).vms[0]!.power, "Running");
    await client.stopVm("shop/db", "PowerOff", { onHost: "h1" });
    assert.equal(await refusal(client.convertVm("shop/db", "h2", esxVm(), conversion())), "Invalid", "the same hypervisor type");
  });

  it("refuses bodies without the right shape before the simulator sees them, naming the field", async (t) => {
    const { url } = await serve(t);
    const cases: [string, string, unknown, RegExp][] = [
      ["PUT", "/v1/vms/shop/db/secondary", { host: "h2", key: "p" }, /body\.settings must be an object/],
      ["PUT", "/v1/vms/shop/db/secondary", { host: "h2", key: "p", settings: { loggingBandwidthMiBps: 100 } }, /body\.settings\.copy must be an object/],
      ["PUT", "/v1/vms/shop/db/secondary", { host: "h2", key: "", settings: ft() }, /body\.key must not be empty/],
      ["PUT", "/v1/vms/shop/db/secondary", { host: "H2", key: "p", settings: ft() }, /body\.host/],
      ["POST", "/v1/vms/shop/db/convert", { target: "k1", config: asKvm(esxVm()), settings: { key: "c", rateMiBps: -1 } }, /body\.settings\.rateMiBps must be a positive number/],
      ["POST", "/v1/vms/shop/db/convert", { target: "k1", config: { ...esxVm(), firmware: "UEFI" }, settings: conversion() }, /body\.config\.firmware must be one of BIOS, EFI, EFISecureBoot/],
      ["POST", "/v1/vms/shop/db/convert", { target: "k1", config: { ...esxVm(), nics: [{ network: "prod", macAddress: "m", model: "ne2000" }] }, settings: conversion() }, /body\.config\.nics\[0\]\.model must be one of/],
    ];
    for (const [method, path, body, message] of cases) {
      const response = await send(url, method, path, body);
      assert.equal(response.status, 422, `${method} ${path} ${JSON.stringify(body)}`);
      const error = (await response.json()) as { code: string; message: string };
      assert.equal(error.code, "Invalid");
      assert.match(error.message, message);
    }
  });
});
