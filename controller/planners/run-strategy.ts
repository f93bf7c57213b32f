// What power state a VM's runStrategy asks for, given how its current run ended (KubeVirt's meanings):
//   Always          run; start again whenever it stops, whatever stopped it
//   RerunOnFailure  run; start again after a failure, but not after the guest shut itself down
//   Once            run once; whatever ends the run, leave it off
//   Manual          Vireo powers it neither on nor off: it stays as it is
//   Halted          keep it off

import type { VirtualMachine } from "../api/types.ts";
import type { VmObservation } from "../core/observation.ts";

export type DesiredPower = "On" | "Off" | "AsIs";

export function desiredPower(vm: Readonly<VirtualMachine>, instance: Readonly<VmObservation> | undefined): DesiredPower {
  const ended = endOfCurrentRun(vm, instance);
  switch (vm.spec.runStrategy) {
    case "Always": return "On";
    case "Halted": return "Off";
    case "Manual": return "AsIs";
    case "Once": return ended ? "Off" : "On";
    case "RerunOnFailure": return ended?.reason === "GuestShutdown" ? "Off" : "On";
  }
}

/** How the VM's current run ended, if it ended on its own (not stopped by Vireo): from status, or newly observed. */
export function endOfCurrentRun(vm: Readonly<VirtualMachine>, instance: Readonly<VmObservation> | undefined): { reason: string; at: number } | undefined {
  const startedAt = vm.status?.startedAt ? Date.parse(vm.status.startedAt) : undefined;
  if (startedAt === undefined) return undefined;
  if (instance && instance.power !== "Off" && (instance.poweredOnAt ?? 0) > startedAt) return undefined;
  const exit = latestExit(vm, instance);
  return exit && exit.at >= startedAt ? exit : undefined;
}

export function latestExit(vm: Readonly<VirtualMachine>, instance: Readonly<VmObservation> | undefined): { reason: VmObservationExit; at: number } | undefined {
  const recorded = vm.status?.lastExit ? { reason: vm.status.lastExit.reason, at: Date.parse(vm.status.lastExit.time) } : undefined;
  const observed = instance?.lastExit;
  if (observed && (!recorded || observed.at > recorded.at)) return observed;
  return recorded;
}

type VmObservationExit = NonNullable<VmObservation["lastExit"]>["reason"];
