// The dashboard's sections, grouped as the product sheet groups them.
import type { MessageKey } from './i18n/en';

export type Group = 'observe' | 'pilot' | 'govern';

export interface Section {
  id: string;
  path: string;
  group: Group;
  label: MessageKey;
  /** What brings this section's backend; until then it shows an honest empty state. */
  arrives?: MessageKey;
  /** The flags page (from the settings API) whose flags this section shows. */
  flagPage?: string;
}

export const sections: Section[] = [
  { id: 'overview', path: '/', group: 'observe', label: 'section.overview' },
  { id: 'topology', path: '/topology', group: 'observe', label: 'section.topology' },
  { id: 'workers', path: '/workers', group: 'observe', label: 'section.workers', flagPage: 'workers' },
  { id: 'federation', path: '/federation', group: 'observe', label: 'section.federation', flagPage: 'federation' },
  { id: 'cluster-workers', path: '/cluster-workers', group: 'observe', label: 'section.cluster-workers' },
  { id: 'onboarding', path: '/onboarding', group: 'pilot', label: 'section.onboarding' },
  { id: 'distribution', path: '/distribution', group: 'pilot', label: 'section.distribution' },
  { id: 'models', path: '/models', group: 'pilot', label: 'section.models' },
  { id: 'incidents', path: '/incidents', group: 'pilot', label: 'section.incidents', flagPage: 'incidents-migrations' },
  { id: 'automations', path: '/automations', group: 'pilot', label: 'section.automations' },
  { id: 'cluster-config', path: '/cluster-config', group: 'pilot', label: 'section.cluster-config', flagPage: 'cluster-config' },
  { id: 'api', path: '/gateway', group: 'pilot', label: 'section.api', arrives: 'arrives.gateway', flagPage: 'api' },
  { id: 'license', path: '/license', group: 'govern', label: 'section.license', arrives: 'arrives.governance' },
  { id: 'branding', path: '/branding', group: 'govern', label: 'section.branding', arrives: 'arrives.governance' },
  { id: 'smtp', path: '/smtp', group: 'govern', label: 'section.smtp', flagPage: 'smtp' },
  { id: 'signup', path: '/signup', group: 'govern', label: 'section.signup', arrives: 'arrives.governance' },
  { id: 'advanced', path: '/settings', group: 'govern', label: 'section.advanced' },
  { id: 'documentation', path: '/documentation', group: 'govern', label: 'section.documentation', arrives: 'arrives.docs' },
];

export const auditSection: Section = { id: 'audit', path: '/audit', group: 'observe', label: 'section.audit' };

export const groups: Group[] = ['observe', 'pilot', 'govern'];

export function sectionFor(path: string): Section | undefined {
  return [...sections, auditSection].find((section) => section.path === path);
}
