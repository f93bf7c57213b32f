// Shared by the provider tests: a host and a VM as a provider is told of them, and a way to catch the
// code a provider refuses an action with.

import assert from "node:assert/strict";
import { ProviderError } from "../../controller/provider/provider.ts";
import type { ProviderErrorCode } from "../../controller/provider/provider.ts";
import type { HostConfig, VmConfig } from "../../controller/core/observation.ts";

export function hostConfig(overrides: Partial<HostConfig> = {}): HostConfig {
  return {
    hypervisor: "esx",
    cpu: { cores: 16, vendor: "intel", features: ["avx2"], overcommitRatio: 4 },
    memoryMiB: 65536,
    datastores: ["shared"],
    networks: ["prod"],
    storagePaths: 2,
    labels: { rack: "r1" },
    ...overrides,
  };
}

export function vmConfig(overrides: Partial<VmConfig> = {}): VmConfig {
  return {
    cpu: 2,
    memoryMiB: 4096,
    cpuFeatures: ["avx2"],
    disks: [{ name: "root", sizeGiB: 20, datastore: "shared" }],
    nics: [{ network: "prod", macAddress: "52:54:00:00:00:01" }],
    workload: { profile: "Steady", cpuPercent: 25 },
    ...overrides,
  };
}

/** The code of the ProviderError the action is refused with; fails when it succeeds. */
export async function refusal(action: Promise<unknown> | (() => unknown)): Promise<ProviderErrorCode> {
  try {
    if (typeof action === "function") await action();
    else await action;
  } catch (error) {
    if (error instanceof ProviderError) return error.code;
    throw error;
  }
  assert.fail("the action was expected to be refused");
}
