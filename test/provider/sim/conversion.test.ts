// Conversions to another hypervisor type in the simulated hosts, on the virtual clock: how long they take,
// what the VM becomes, what is refused, and what ends one early.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { conversionMs } from "../../../controller/core/conversion.ts";
import { fleet, refusal, running, settings } from "../../support/migration.ts";
import { asKvm, conversion, conversionOf, esxVm } from "./fault-tolerance-support.ts";

/** 20 GiB of disk at 100 MiB/s. */
const CONVERSION_MS = conversionMs(20 * 1024, 100);

/** shop/db, off on the ESX host e1; KVM hosts k1 (sees its datastore) and k2 (does not). */
async function offOnEsx() {
  const { clock, sim } = await fleet({ e1: {}, e2: {}, k1: { hypervisor: "kvm" }, k2: { hypervisor: "kvm", datastores: ["other"] } });
  await running(clock, sim, { "shop/db": ["e1", esxVm()] });
  await sim.stopVm("shop/db", "PowerOff");
  return { clock, sim };
}

describe("conversion to another hypervisor type", () => {
  it("takes the disks' size over the rate on the virtual clock, then registers the VM off on the target with its new devices and the same MACs", async () => {
    const { clock, sim } = await offOnEsx();
    assert.equal(CONVERSION_MS, 204_800);
    const t0 = clock.now();
    const converted = asKvm(esxVm());
    await sim.convertVm("shop/db", "k1", converted, conversion());
    assert.deepEqual(await conversionOf(sim, "shop/db"), {
      vm: "shop/db", key: "c1", source: "e1", target: "k1", from: "esx", to: "kvm", phase: "Converting", startedAt: t0, endsAt: t0 + CONVERSION_MS, totalMiB: 20_480, convertedMiB: 0,
    });
    await clock.advance(CONVERSION_MS / 2);
    assert.equal((await conversionOf(sim, "shop/db"))?.convertedMiB, 10_240, "linear in time");
    assert.equal(await refusal(sim.startVm("shop/db", "e1", esxVm())), "Conflict");
    assert.equal(await refusal(sim.startVm("shop/db", "k1", converted)), "Conflict");
    assert.equal(await refusal(sim.adminPowerOn("shop/db")), "Conflict");
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "e1", power: "Off" }]);

    await clock.advance(CONVERSION_MS / 2 - 1);
    assert.equal((await conversionOf(sim, "shop/db"))?.phase, "Converting");
    await clock.advance(1);
    const done = await conversionOf(sim, "shop/db");
    assert.deepEqual([done?.phase, done?.convertedMiB, done?.endsAt], ["Succeeded", 20_480, t0 + CONVERSION_MS]);
    const vm = sim.observeVm("shop/db")!;
    assert.deepEqual([vm.host, vm.power], ["k1", "Off"]);
    assert.deepEqual(vm.config, converted);
    assert.deepEqual(vm.config.nics.map((nic) => [nic.macAddress, nic.model]), [["00:50:56:00:00:01", "virtio"], ["00:50:56:00:00:02", "virtio"]]);
    assert.equal(vm.config.firmware, "EFI");
    await sim.startVm("shop/db", "k1", converted);
  });

  it("is a no-op under the same key, and refused under another while one is under way", async () => {
    const { sim } = await offOnEsx();
    await sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion("c1"));
    const revision = sim.revision();
    await sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion("c1"));
    assert.equal(sim.revision(), revision);
    assert.equal(await refusal(sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion("c2"))), "Conflict");
  });

  it("refuses a VM that is on, a target of the same type, a target that does not see the disks or is down, and bad settings", async () => {
    const { clock, sim } = await offOnEsx();
    const convert = (target: string, settings = conversion()) => sim.convertVm("shop/db", target, asKvm(esxVm()), settings);
    assert.equal(await refusal(convert("e2")), "Invalid");
    assert.equal(await refusal(convert("k2")), "Incompatible");
    assert.equal(await refusal(convert("nowhere")), "NotFound");
    assert.equal(await refusal(sim.convertVm("shop/none", "k1", asKvm(esxVm()), conversion())), "NotFound");
    assert.equal(await refusal(convert("k1", conversion("c", 0))), "Invalid");
    assert.equal(await refusal(convert("k1", conversion(""))), "Invalid");
    assert.equal(await refusal(sim.convertVm("shop/db", "k1", { ...asKvm(esxVm()), firmware: "UEFI" as never }, conversion())), "Invalid");
    await sim.crashHost("k1");
    assert.equal(await refusal(convert("k1")), "Unavailable");
    await sim.recoverHost("k1");
    await sim.startVm("shop/db", "e1", esxVm());
    await clock.advance(sim.timings.bootMs);
    assert.equal(await refusal(convert("k1")), "Conflict");
    assert.deepEqual((await sim.observe()).conversions, []);
  });

  it("fails when the source host fails, and the VM stays off on its source", async () => {
    const { clock, sim } = await offOnEsx();
    const t0 = clock.now();
    await sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion());
    await clock.advance(51_200);
    await sim.crashHost("e1");
    const failed = await conversionOf(sim, "shop/db");
    assert.deepEqual([failed?.phase, failed?.endsAt, failed?.convertedMiB], ["Failed", t0 + 51_200, 5_120]);
    assert.match(failed?.reason ?? "", /^host e1 failed; the VM stays on host e1$/);
    await clock.advance(CONVERSION_MS);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "e1", power: "Off" }]);
    assert.equal((await conversionOf(sim, "shop/db"))?.convertedMiB, 5_120, "what it had done stays as it was");
  });

  it("is cancelled by removing the VM", async () => {
    const { clock, sim } = await offOnEsx();
    await sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion());
    await sim.removeVm("shop/db");
    await clock.advance(CONVERSION_MS);
    assert.deepEqual([(await sim.observe()).conversions, sim.groundTruth().vms], [[], []]);
    await sim.unregisterHost("k1");
  });

  it("is the only way to another hypervisor type: a live migration there is refused", async () => {
    const { clock, sim } = await offOnEsx();
    await sim.startVm("shop/db", "e1", esxVm());
    await clock.advance(sim.timings.bootMs);
    await assert.rejects(sim.migrateVm("shop/db", "k1", { key: "m", settings: settings() }), { code: "Incompatible", message: /a running guest cannot change hypervisor/ });
  });

  it("keeps the target host registered while it converts for it", async () => {
    const { sim } = await offOnEsx();
    await sim.convertVm("shop/db", "k1", asKvm(esxVm()), conversion());
    assert.equal(await refusal(sim.unregisterHost("k1")), "Conflict");
  });
});
