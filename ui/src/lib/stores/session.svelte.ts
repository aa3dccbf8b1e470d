// Who is logged in, and where the first-boot wizard stands.
import { type Admin, ApiError, api, type OnboardingState, setCsrfToken, unwrap } from '../api/client';
import { bus } from '../bus';
import { live } from './live.svelte';

export type SessionStatus = 'loading' | 'onboarding' | 'anonymous' | 'authenticated';

export class Session {
  status = $state<SessionStatus>('loading');
  admin = $state<Admin | null>(null);
  onboarding = $state<OnboardingState | null>(null);
  poolName = $derived(this.onboarding?.pool_name ?? '');
  site = $derived(this.onboarding?.site ?? '');

  constructor() {
    bus.on('sessionEnded', () => this.ended());
  }

  /** Find out where this browser stands: wizard, login page or dashboard. */
  async load(): Promise<void> {
    this.onboarding = unwrap(await api.GET('/api/onboarding'));
    if (!this.onboarding.has_admin) {
      this.status = 'onboarding';
      return;
    }
    try {
      const me = unwrap(await api.GET('/api/auth/me'));
      this.signedIn(me.admin, me.csrf_token);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.status = 'anonymous';
      else throw error;
    }
  }

  async login(email: string, password: string): Promise<void> {
    const session = unwrap(await api.POST('/api/auth/login', { body: { email, password } }));
    this.signedIn(session.admin, session.csrf_token);
    this.onboarding = unwrap(await api.GET('/api/onboarding'));
  }

  async logout(): Promise<void> {
    live.disconnect();
    try {
      unwrap(await api.POST('/api/auth/logout'));
    } finally {
      this.ended();
    }
  }

  signedIn(admin: Admin, csrfToken: string): void {
    setCsrfToken(csrfToken);
    this.admin = admin;
    this.status = this.onboarding?.completed === false ? 'onboarding' : 'authenticated';
    live.connect();
  }

  async refreshOnboarding(): Promise<void> {
    this.onboarding = unwrap(await api.GET('/api/onboarding'));
    if (this.onboarding.completed && this.admin) this.status = 'authenticated';
  }

  private ended(): void {
    live.disconnect();
    setCsrfToken(null);
    this.admin = null;
    this.status = 'anonymous';
  }
}

export const session = new Session();
