// Reading a kubeconfig as kubectl does, without @kubernetes/client-node: the current context's cluster and
// user, KUBECONFIG's files merged (the first to name a thing wins), paths relative to their file, a token
// file re-read as it rotates.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import type { RequestOptions } from "node:https";
import { delimiter, join } from "node:path";
import { loadEndpoint } from "../../controller/sources/kube/kubeconfig.ts";
import { tempDir } from "../support/process.ts";

const dir = tempDir("kubeconfig");
test.after(() => dir.remove());

function write(name: string, text: string): string {
  const path = join(dir.path, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

async function optionsOf(endpoint: ReturnType<typeof loadEndpoint>): Promise<RequestOptions> {
  const options: RequestOptions = {};
  await endpoint.authenticate(options);
  return options;
}

test("the current context's server, CA and token; a CA named by a relative path is read beside the kubeconfig", async () => {
  write("a/certs/ca.crt", "CA FROM FILE");
  const path = write("a/config", [
    "apiVersion: v1", "kind: Config", "current-context: two",
    "clusters: [{name: one, cluster: {server: 'https://one:6443/'}}, {name: two, cluster: {server: 'https://two:6443', certificate-authority: certs/ca.crt, tls-server-name: api.two}}]",
    "users: [{name: me, user: {token: secret}}]",
    "contexts: [{name: one, context: {cluster: one, user: me}}, {name: two, context: {cluster: two, user: me}}]",
  ].join("\n"));
  const endpoint = loadEndpoint(path);
  assert.equal(endpoint.server, "https://two:6443");
  const options = await optionsOf(endpoint);
  assert.equal(String(options.ca), "CA FROM FILE");
  assert.equal(options.servername, "api.two");
  assert.equal(options.rejectUnauthorized, true);
  assert.deepEqual(options.headers, { Authorization: "Bearer secret" });
});

test("KUBECONFIG's files are merged: the current context from the first that sets one, each name from the first that has it", async () => {
  const first = write("m/first", "current-context: ctx\nusers: [{name: me, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]\n");
  const second = write("m/second", "current-context: other\nclusters: [{name: c, cluster: {server: 'https://merged:443', insecure-skip-tls-verify: true}}]\nusers: [{name: me, user: {token: not-this-one}}]\ncontexts: [{name: ctx, context: {cluster: c, user: me}}]\n");
  const before = process.env["KUBECONFIG"];
  process.env["KUBECONFIG"] = [first, second].join(delimiter);
  try {
    const endpoint = loadEndpoint();
    assert.equal(endpoint.server, "https://merged:443");
    const options = await optionsOf(endpoint);
    assert.equal(String(options.cert), "CERT");
    assert.equal(String(options.key), "KEY");
    assert.equal(options.rejectUnauthorized, false);
    assert.equal(options.headers, undefined);
  } finally {
    if (before === undefined) delete process.env["KUBECONFIG"];
    else process.env["KUBECONFIG"] = before;
  }
});

test("a kubeconfig without a current cluster is refused with its path", () => {
  const path = write("empty", "apiVersion: v1\nkind: Config\n");
  assert.throws(() => loadEndpoint(path), new RegExp(`kubeconfig ${path} has no current cluster`));
});

test("a token file's token is sent (re-read once a minute, as a projected token rotates); basic auth is sent as such", async () => {
  const token = write("t/token", "first\n");
  const path = write("t/config", `current-context: x\nclusters: [{name: c, cluster: {server: 'https://t'}}]\nusers: [{name: u, user: {tokenFile: ${token}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n`);
  assert.deepEqual((await optionsOf(loadEndpoint(path))).headers, { Authorization: "Bearer first" });
  const basic = write("b/config", "current-context: x\nclusters: [{name: c, cluster: {server: 'https://b'}}]\nusers: [{name: u, user: {username: admin, password: pw}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n");
  assert.deepEqual((await optionsOf(loadEndpoint(basic))).headers, { Authorization: `Basic ${Buffer.from("admin:pw").toString("base64")}` });
});

test("a user whose credential comes from an exec plugin gets the token the plugin prints", async () => {
  const plugin = write("p/plugin.mjs", `process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-plugin" } }));\n`);
  const path = write("p/config", [
    "apiVersion: v1", "kind: Config", "current-context: x",
    "clusters: [{name: c, cluster: {server: 'https://p:6443', insecure-skip-tls-verify: true}}]",
    `users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(plugin)}], interactiveMode: Never}}}]`,
    "contexts: [{name: x, context: {cluster: c, user: u}}]",
  ].join("\n"));
  const endpoint = loadEndpoint(path);
  assert.equal(endpoint.server, "https://p:6443");
  const headers = (await optionsOf(endpoint)).headers as Record<string, string>;
  assert.equal(headers["Authorization"] ?? headers["authorization"], "Bearer from-plugin");
});
