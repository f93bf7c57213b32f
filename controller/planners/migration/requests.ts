// How a VirtualMachineMigration is named among the cluster's verdicts, and the key of what the hosts do for
// it (its live migration or its conversion): unique per object, recognisable after the object is gone.

import type { VirtualMachineMigration } from "../../api/types.ts";

export function requestKey(request: Readonly<VirtualMachineMigration>): string {
  return `request:${request.metadata.namespace ?? "default"}/${request.metadata.name}/${request.metadata.uid ?? ""}`;
}

/** "namespace/name". */
export function requestName(request: Readonly<VirtualMachineMigration>): string {
  return `${request.metadata.namespace ?? "default"}/${request.metadata.name}`;
}

/** The id of the VM the request moves: "namespace/name". */
export function requestVm(request: Readonly<VirtualMachineMigration>): string {
  return `${request.metadata.namespace ?? "default"}/${request.spec.vmName}`;
}
