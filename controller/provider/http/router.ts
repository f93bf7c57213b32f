// The router of hostsim's API: which route a request names, and its path parameters, parsed once here for
// every route. A parameter is a host's or a VM's name and is checked as the Kubernetes API checks that name
// (names.ts): a route cannot declare a parameter that is not checked, and no handler sees one that failed.

import { hostNameProblem, namespaceProblem, vmNameProblem } from "./names.ts";
import { API_PREFIX, WireError } from "./wire.ts";

export type PathParameter = "host" | "namespace" | "name";
/** The parameters of one request's path, each checked; a route's handler reads only those its pattern has. */
export type PathParams = Readonly<Partial<Record<PathParameter, string>>>;

export interface RouteRequest {
  params: PathParams;
  query: URLSearchParams;
  /** The parsed JSON body; undefined for routes that take none. */
  body: unknown;
  /** Aborted when the client goes away or the server closes: a long-poll then stops waiting. */
  signal: AbortSignal;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Method = "GET" | "PUT" | "POST" | "DELETE";

export interface Route {
  method: Method;
  /** The pattern as written, e.g. `/v1/vms/:namespace/:name/start`: the route's name in logs and metrics. */
  path: string;
  /** Path segments; `:x` matches any one segment, which is checked as parameter x and handed over in `params`. */
  pattern: string[];
  takesBody: boolean;
  handle(request: RouteRequest): Promise<Reply> | Reply;
}

/** How each path parameter is checked: a problem, or undefined for a name the API would accept. */
const PATH_PARAMETERS: Readonly<Record<PathParameter, (value: string) => string | undefined>> = {
  host: hostNameProblem,
  namespace: namespaceProblem,
  name: vmNameProblem,
};

function isPathParameter(name: string): name is PathParameter {
  return Object.hasOwn(PATH_PARAMETERS, name);
}

/** A route; throws at start-up when its pattern has a parameter the router does not know how to check. */
export function route(method: Method, path: string, takesBody: boolean, handle: Route["handle"]): Route {
  const pattern = path.split("/").filter(Boolean);
  for (const part of pattern) {
    if (part.startsWith(":") && !isPathParameter(part.slice(1))) throw new Error(`route ${method} ${path}: no check for the path parameter ${part}`);
  }
  return { method, path, pattern, takesBody, handle };
}

export interface MatchedRoute {
  route: Route;
  params: PathParams;
}

/**
 * The route of a request and its checked parameters. Refuses with 404 (no route has that path), 405 (not
 * with that method), 400 (a segment is not valid percent-encoding) or 422 Invalid (a parameter is not a
 * name the API would accept; the message names the parameter).
 */
export function matchRoute(routes: readonly Route[], method: string | undefined, pathname: string): MatchedRoute {
  const segments = pathSegments(pathname);
  const matching = routes.filter((r) => matches(r.pattern, segments));
  if (matching.length === 0) throw new WireError(404, "RouteNotFound", `no route ${pathname} (the API is under ${API_PREFIX}/)`);
  const found = matching.find((r) => r.method === method);
  if (!found) {
    const allowed = matching.map((r) => r.method).join(", ");
    throw new WireError(405, "MethodNotAllowed", `${method} is not allowed on ${pathname}; allowed: ${allowed}`, { allow: allowed });
  }
  return { route: found, params: parseParams(found.pattern, segments) };
}

/** The pattern of the route a path names, whatever the method and its parameters; "unmatched" for none. */
export function routePath(routes: readonly Route[], pathname: string): string {
  // Raw segments: a parameter's percent-encoding never changes how many segments there are.
  const segments = pathname.split("/").filter(Boolean);
  return routes.find((r) => matches(r.pattern, segments))?.path ?? "unmatched";
}

function parseParams(pattern: readonly string[], segments: readonly string[]): PathParams {
  const params: Partial<Record<PathParameter, string>> = {};
  pattern.forEach((part, i) => {
    const name = part.slice(1);
    if (!part.startsWith(":") || !isPathParameter(name)) return;
    const value = segments[i]!;
    const problem = PATH_PARAMETERS[name](value);
    if (problem !== undefined) throw new WireError(422, "Invalid", `path parameter ${name} ${problem}`);
    params[name] = value;
  });
  return params;
}

function pathSegments(pathname: string): string[] {
  try {
    return pathname.split("/").filter(Boolean).map((segment) => decodeURIComponent(segment));
  } catch (error) {
    throw new WireError(400, "BadRequest", `the path ${pathname} is not valid percent-encoding: ${(error as Error).message}`);
  }
}

function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  return pattern.length === segments.length && pattern.every((part, i) => part.startsWith(":") || part === segments[i]);
}
