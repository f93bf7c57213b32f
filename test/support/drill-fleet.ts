// The fleet the HA drills run on, in both modes: an HA-enabled cluster of three hosts and six VMs, four of
// them protected by an HAPolicy with restartPriority High, two by their runStrategy (Medium).

import { clusterYaml, hostYaml, vmYaml } from "./scenario.ts";

export const HOSTS = ["h1", "h2", "h3"];
export const VMS = ["app-1", "app-2", "app-3", "app-4", "app-5", "app-6"];
/** Protected by the HAPolicy with restartPriority High; the others by their runStrategy (Medium). */
export const HIGH = new Set(["app-1", "app-2", "app-3", "app-4"]);

/** The fleet's manifests; `policy` adds lines to the HAPolicy's spec (an isolation response, say). */
export function drillFleetYaml(policy = ""): string {
  return clusterYaml("prod", "Spread", "{enabled: true, failureDetectionSeconds: 15}")
    + HOSTS.map((h) => hostYaml(h)).join("")
    + `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: critical, namespace: default}
spec:
  selector: {matchLabels: {tier: critical}}
  restartPriority: High
${policy}---
`
    + VMS.map((n) => vmYaml(n, { labels: { app: n, tier: HIGH.has(n) ? "critical" : "batch" } })).join("");
}
