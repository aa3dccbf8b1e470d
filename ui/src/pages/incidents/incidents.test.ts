import { describe, expect, it } from 'vitest';
import type { Incident, Migration, Model } from '../../lib/api/client';
import type { Worker } from '../../lib/stores/workers.svelte';
import type { Admin } from '../../lib/api/client';
import { actorName, incidentActions, migrationActions, moveChoices, subjectPath, withoutEmpty } from './incidents';

function incident(status: Incident['status'], escalated_at: string | null = null): Incident {
  return {
    id: 'i1', kind: 'manual', severity: 'warning', title: 't', detail: '', subject: '', status,
    occurrences: 1, opened_at: '2026-01-01T00:00:00Z', last_seen_at: '2026-01-01T00:00:00Z',
    opened_by: 'admin:a', acknowledged_at: null, acknowledged_by: null, assignee_id: null,
    assignee_name: null, escalated_at, resolved_at: null, resolution: null,
  };
}

describe('incidentActions', () => {
  it('offers acknowledge only while open, escalate once, and only comments once resolved', () => {
    expect(incidentActions(incident('open'))).toEqual(['acknowledge', 'assign', 'comment', 'escalate', 'resolve']);
    expect(incidentActions(incident('acknowledged', '2026-01-02T00:00:00Z'))).toEqual(['assign', 'comment', 'resolve']);
    expect(incidentActions(incident('resolved'))).toEqual(['comment']);
  });
});

describe('migrationActions', () => {
  it('approves or rejects proposals and cancels approved orders that have not started', () => {
    const migration = (status: Migration['status']) => ({ status }) as Migration;
    expect(migrationActions(migration('proposed'))).toEqual(['approve', 'reject']);
    expect(migrationActions(migration('pending'))).toEqual(['cancel']);
    expect(migrationActions(migration('running'))).toEqual([]);
    expect(migrationActions(migration('completed'))).toEqual([]);
  });
});

describe('subjectPath', () => {
  it('leads to the page of the subject, or nowhere', () => {
    expect(subjectPath('worker:42')).toBe('/workers');
    expect(subjectPath('peer:abc')).toBe('/federation');
    expect(subjectPath('model:7')).toBe('/models');
    expect(subjectPath('')).toBeNull();
    expect(subjectPath('disk:/var')).toBeNull();
  });
});

describe('moveChoices', () => {
  it('moves from a worker holding the model to one that does not', () => {
    const workers = ['a', 'b', 'c'].map((id) => ({ id, name: id }) as Worker);
    const model = { deployments: [{ worker_id: 'b' }] } as Model;
    const choices = moveChoices(model, workers);
    expect(choices.sources.map((w) => w.id)).toEqual(['b']);
    expect(choices.targets.map((w) => w.id)).toEqual(['a', 'c']);
    expect(moveChoices(undefined, workers)).toEqual({ sources: [], targets: [] });
  });
});

describe('withoutEmpty', () => {
  it('leaves out the filters set to all', () => {
    expect(withoutEmpty({ status: 'active', kind: '', severity: 'critical' })).toEqual({ status: 'active', severity: 'critical' });
  });
});

describe('actorName', () => {
  it('names admins and leaves automations as they are', () => {
    const admins = [{ id: 'a1', display_name: 'Alice Admin' }] as Admin[];
    expect(actorName('admin:a1', admins)).toBe('Alice Admin');
    expect(actorName('admin:gone', admins)).toBe('admin:gone');
    expect(actorName('automation:failover', admins)).toBe('automation:failover');
  });
});
