/**
 * The application-endpoint port: is the application in a region up? A ReplicaCluster may name
 * endpoints (health URLs) of the application that runs beside its database; the operator and
 * the observers check them with the database, show the result, and a policy may refuse to fail
 * over into a region whose application is down.
 */
export interface AppEndpointCheck {
  name: string;
  healthy: boolean;
  /** The HTTP status, when there was an answer. */
  statusCode?: number;
  /** Why it is unhealthy, as a CamelCase reason: HttpStatus, Timeout, Unreachable, TlsFailed, ... */
  reason?: string;
  message: string;
}

export interface AppEndpointChecker {
  /** Checks one endpoint; never throws, answers within `timeoutMs`. */
  check(endpoint: { name: string; url: string }, timeoutMs: number): Promise<AppEndpointCheck>;
}
