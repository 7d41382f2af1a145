/**
 * One shared control plane for the integration tests that only need a working API server.
 * Tests that stop or break a control plane start their own.
 */
import type { TestProject } from 'vitest/node';
import { ControlPlane } from '../harness/control-plane.ts';

export interface SharedControlPlane {
  server: string;
  caPath: string;
  adminToken: string;
  kubeconfigPath: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: SharedControlPlane;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cp = await ControlPlane.start({ name: 'shared' });
  project.provide('controlPlane', {
    server: cp.server,
    caPath: cp.caPath,
    adminToken: cp.adminToken,
    kubeconfigPath: cp.kubeconfigPath,
  });
  return () => cp.stop();
}
