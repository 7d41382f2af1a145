import { describe, expect, it } from 'vitest';
import {
  type DatabaseFacts,
  missingFencePrivileges,
  missingUnfencePrivileges,
  planFence,
  type ServerFacts,
} from './postgres-fencing.ts';

const db = (name: string, over: Partial<DatabaseFacts> = {}): DatabaseFacts => ({
  oid: name.length,
  name,
  connectionLimit: -1,
  allowConnections: true,
  template: false,
  owned: true,
  ...over,
});

const databases = [
  db('app'),
  db('postgres', { owned: false }),
  db('shop', { connectionLimit: 7 }),
  db('template0', { template: true, allowConnections: false, owned: false }),
  db('template1', { template: true, owned: false }),
];

const facts = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  inRecovery: false,
  readOnly: false,
  role: 'fence_operator',
  superuser: false,
  canAlterSystem: true,
  canReload: true,
  canSignal: true,
  canReadStats: true,
  recordsTable: false,
  recordsSchema: false,
  canKeepRecords: true,
  databases,
  ...over,
});

const names = { target: 'app', maintenance: 'postgres' };
const namesOf = (list: DatabaseFacts[]) => list.map((d) => d.name);

describe('planFence', () => {
  it('with a superuser limits every database that takes connections, the maintenance database and template1 included', () => {
    const plan = planFence(facts({ superuser: true }), 'ReadOnly', names);
    expect(namesOf(plan.limit)).toEqual(['app', 'postgres', 'shop', 'template1']);
    expect(plan.close).toEqual([]);
  });

  it('with another role leaves out the maintenance database and the templates', () => {
    expect(namesOf(planFence(facts(), 'ReadOnly', names).limit)).toEqual(['app', 'shop']);
  });

  it('Shutdown closes every database but the templates and the maintenance database', () => {
    const plan = planFence(facts({ superuser: true }), 'Shutdown', names);
    expect(namesOf(plan.close)).toEqual(['app', 'shop']);
  });

  it('refuses a role that is not a superuser when the application database is the maintenance database', () => {
    expect(() => planFence(facts(), 'ReadOnly', { target: 'postgres', maintenance: 'postgres' })).toThrow(
      /set maintenanceDatabase to a database the applications do not use/,
    );
    const plan = planFence(facts({ superuser: true }), 'ReadOnly', {
      target: 'postgres',
      maintenance: 'postgres',
    });
    expect(namesOf(plan.limit)).toContain('postgres');
  });
});

describe('missingFencePrivileges', () => {
  it('asks nothing of a superuser', () => {
    const f = facts({ superuser: true, canAlterSystem: false, canSignal: false });
    expect(missingFencePrivileges(f, planFence(f, 'Shutdown', names), names)).toEqual([]);
  });

  it('names each missing privilege with the GRANT that gives it', () => {
    const f = facts({
      canAlterSystem: false,
      canReload: false,
      canSignal: false,
      canReadStats: false,
      canKeepRecords: false,
      databases: databases.map((d) => (d.name === 'shop' ? { ...d, owned: false } : d)),
    });
    expect(missingFencePrivileges(f, planFence(f, 'ReadOnly', names), names)).toEqual([
      expect.stringContaining(
        'GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO "fence_operator"',
      ),
      expect.stringContaining('GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "fence_operator"'),
      expect.stringContaining('GRANT pg_signal_backend TO "fence_operator"'),
      expect.stringContaining('GRANT pg_monitor TO "fence_operator"'),
      expect.stringContaining('GRANT CREATE ON DATABASE "postgres" TO "fence_operator"'),
      expect.stringMatching(/^ownership of database\(s\) shop /),
    ]);
  });

  it('does not ask for ALTER SYSTEM once the server is read-only, nor ownership of a database already at 0', () => {
    const f = facts({
      readOnly: true,
      canAlterSystem: false,
      canReload: false,
      databases: databases.map((d) => (d.name === 'shop' ? { ...d, owned: false, connectionLimit: 0 } : d)),
    });
    expect(missingFencePrivileges(f, planFence(f, 'ReadOnly', names), names)).toEqual([]);
  });

  it('names the schema or the table when they exist but the role may not use them', () => {
    const withSchema = facts({ canKeepRecords: false, recordsSchema: true });
    expect(missingFencePrivileges(withSchema, planFence(withSchema, 'ReadOnly', names), names)).toEqual([
      expect.stringContaining('GRANT USAGE, CREATE ON SCHEMA regionfailover TO "fence_operator"'),
    ]);
    const withTable = facts({ canKeepRecords: false, recordsSchema: true, recordsTable: true });
    expect(missingFencePrivileges(withTable, planFence(withTable, 'ReadOnly', names), names)).toEqual([
      expect.stringContaining('GRANT SELECT, INSERT, UPDATE, DELETE ON regionfailover.fenced_database'),
    ]);
  });
});

describe('missingUnfencePrivileges', () => {
  it('needs ALTER SYSTEM only while read-only, and ownership only of databases it must change back', () => {
    const record = {
      connectionLimitBefore: 7,
      allowConnectionsBefore: true,
      epoch: 2,
      fencedAt: new Date(0),
    };
    const f = facts({
      readOnly: true,
      canAlterSystem: false,
      recordsTable: true,
      databases: [
        db('shop', { owned: false, connectionLimit: 0, record }),
        db('done', { owned: false, connectionLimit: 7, record }),
      ],
    });
    expect(missingUnfencePrivileges(f, 'postgres')).toEqual([
      expect.stringContaining('ALTER SYSTEM on default_transaction_read_only'),
      expect.stringMatching(/^ownership of database\(s\) shop /),
    ]);
    expect(missingUnfencePrivileges({ ...f, readOnly: false, databases: [] }, 'postgres')).toEqual([]);
  });
});
