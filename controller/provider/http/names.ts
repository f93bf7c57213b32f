// Host and VM names as the Kubernetes API checks the objects they come from: a host is named as a Host
// object (a lowercase RFC 1123 subdomain), a VM as its VirtualMachine, `namespace/name`, with the
// namespace an RFC 1123 label and the name a subdomain. hostsim refuses any other name, in a path or in a
// body, before the simulator sees it: a name is never a path, a query or markup.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_LABEL_LENGTH = 63;
const MAX_SUBDOMAIN_LENGTH = 253;

/** What is wrong with a Host's name, or undefined when the API would accept it. */
export function hostNameProblem(value: string): string | undefined {
  if (value.length <= MAX_SUBDOMAIN_LENGTH && DNS1123_SUBDOMAIN.test(value)) return undefined;
  return `must be a host name (a lowercase RFC 1123 subdomain of at most ${MAX_SUBDOMAIN_LENGTH} characters), got ${JSON.stringify(value)}`;
}

/** What is wrong with a namespace's name, or undefined. */
export function namespaceProblem(value: string): string | undefined {
  if (value.length <= MAX_LABEL_LENGTH && DNS1123_LABEL.test(value)) return undefined;
  return `must be a namespace (a lowercase RFC 1123 label of at most ${MAX_LABEL_LENGTH} characters), got ${JSON.stringify(value)}`;
}

/** What is wrong with a VirtualMachine's name (without its namespace), or undefined. */
export function vmNameProblem(value: string): string | undefined {
  if (value.length <= MAX_SUBDOMAIN_LENGTH && DNS1123_SUBDOMAIN.test(value)) return undefined;
  return `must be a VM name (a lowercase RFC 1123 subdomain of at most ${MAX_SUBDOMAIN_LENGTH} characters), got ${JSON.stringify(value)}`;
}

/** What is wrong with a VM id `namespace/name`, or undefined. */
export function vmIdProblem(value: string): string | undefined {
  const parts = value.split("/");
  const valid = parts.length === 2 && namespaceProblem(parts[0]!) === undefined && vmNameProblem(parts[1]!) === undefined;
  return valid ? undefined : `must be a VM id of the form namespace/name, got ${JSON.stringify(value)}`;
}
