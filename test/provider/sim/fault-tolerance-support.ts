// Shared by the fault-tolerance and conversion tests: FT settings, a VM's secondary and conversion as the
// hosts report them, a host's allocation, and converted VM configurations.

import { DEFAULT_FT_LOGGING_MIBPS } from "../../../controller/core/fault-tolerance.ts";
import type { FaultToleranceSettings, SecondaryObservation } from "../../../controller/core/fault-tolerance.ts";
import type { ConversionObservation, ConversionSettings } from "../../../controller/core/conversion.ts";
import type { VmConfig } from "../../../controller/core/observation.ts";
import type { HypervisorProvider } from "../../../controller/provider/provider.ts";
import { settings, vmConfig } from "../../support/migration.ts";

export function ft(overrides: Partial<FaultToleranceSettings> = {}): FaultToleranceSettings {
  return { loggingBandwidthMiBps: DEFAULT_FT_LOGGING_MIBPS, copy: settings(), ...overrides };
}

export async function secondaryOf(provider: HypervisorProvider, vm: string): Promise<SecondaryObservation | undefined> {
  return (await provider.observe()).secondaries?.find((s) => s.vm === vm);
}

export async function conversionOf(provider: HypervisorProvider, vm: string): Promise<ConversionObservation | undefined> {
  return (await provider.observe()).conversions?.find((c) => c.vm === vm);
}

export async function allocated(provider: HypervisorProvider, host: string): Promise<{ cpu: number; memoryMiB: number }> {
  const report = (await provider.observe()).hosts.find((h) => h.name === host);
  if (!report) throw new Error(`no host ${host}`);
  return report.allocated;
}

/** A VM with one 20 GiB disk on `datastore`, two NICs on prod, with VMware's devices. */
export function esxVm(datastore = "shared"): VmConfig {
  return vmConfig({
    disks: [{ name: "root", sizeGiB: 20, datastore }],
    nics: [
      { network: "prod", macAddress: "00:50:56:00:00:01", model: "vmxnet3" },
      { network: "prod", macAddress: "00:50:56:00:00:02", model: "e1000" },
    ],
    firmware: "EFI",
  });
}

/** The same VM with KVM's devices: the MACs kept, virtio NICs. */
export function asKvm(config: VmConfig): VmConfig {
  return { ...config, nics: config.nics.map((nic) => ({ ...nic, model: "virtio" })) };
}

export function conversion(key = "c1", rateMiBps = 100): ConversionSettings {
  return { key, rateMiBps };
}
