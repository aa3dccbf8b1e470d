// What an admin may do with an incident or a migration, and where an incident's subject lives.
import type { Admin, Incident, Migration, Model } from '../../lib/api/client';
import type { Worker } from '../../lib/stores/workers.svelte';

export type IncidentAction = 'acknowledge' | 'assign' | 'comment' | 'escalate' | 'resolve';
export type MigrationAction = 'approve' | 'reject' | 'cancel';

/** The commands that make sense in an incident's current state (a resolved one takes comments). */
export function incidentActions(incident: Incident): IncidentAction[] {
  if (incident.status === 'resolved') return ['comment'];
  const actions: IncidentAction[] = incident.status === 'open' ? ['acknowledge'] : [];
  actions.push('assign', 'comment');
  if (!incident.escalated_at) actions.push('escalate');
  actions.push('resolve');
  return actions;
}

/** A proposed migration waits for an approval; an approved one can still be cancelled until it runs. */
export function migrationActions(migration: Migration): MigrationAction[] {
  if (migration.status === 'proposed') return ['approve', 'reject'];
  return migration.status === 'pending' ? ['cancel'] : [];
}

const subjectSections: Record<string, string> = { worker: '/workers', peer: '/federation', model: '/models' };

/** The dashboard page about an incident's subject ("worker:<id>" → /workers), if there is one. */
export function subjectPath(subject: string): string | null {
  return subjectSections[subject.split(':', 1)[0]] ?? null;
}

/** A move goes from a worker that holds the model to one that does not. */
export function moveChoices(model: Model | undefined, workers: Worker[]): { sources: Worker[]; targets: Worker[] } {
  const holders = new Set(model?.deployments.map((d) => d.worker_id) ?? []);
  return {
    sources: workers.filter((w) => holders.has(w.id)),
    targets: model ? workers.filter((w) => !holders.has(w.id)) : [],
  };
}

/** An actor as people read it: an admin by name, anything else (an automation) as it is. */
export function actorName(actor: string, admins: Admin[]): string {
  const id = actor.startsWith('admin:') ? actor.slice('admin:'.length) : null;
  return admins.find((admin) => admin.id === id)?.display_name ?? actor;
}

/** Query parameters without the filters left on "all". */
export function withoutEmpty<T extends Record<string, string>>(filter: T): Partial<T> {
  return Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== '')) as Partial<T>;
}

export const incidentKinds = [
  'worker_offline', 'deploy_failed', 'peer_unreachable', 'peer_quarantined', 'batch_rejected',
  'disk_space_low', 'migration_failed', 'manual',
] as const;
export const severities = ['info', 'warning', 'critical'] as const;
export const statusFilters = ['active', 'open', 'acknowledged', 'resolved'] as const;
