// The chat-native views every platform renders: the request form and the home view (forms.ts,
// home.ts), behind one object bootstrap builds and hands to each chat adapter.
import type { PrincipalId, RequestOrigin } from '../core/types.js';
import { RequestForms, type FormSelection, type FormValues, type FormsService, type RequestFormModel, type SubmitResult, type TargetChoice } from './forms.js';
import { HomeViews, type HomeLimits, type HomeModel } from './home.js';
import type { ChatContext } from './chat/notifier.js';
import type { Clock, RequestStore } from './ports.js';

export interface ChatViewsDeps {
  service: FormsService & ChatContext;
  store: Pick<RequestStore, 'list'>;
  clock: Clock;
  homeLimits?: Partial<HomeLimits>;
}

export class ChatViews {
  readonly forms: RequestForms;
  readonly home: HomeViews;

  constructor(deps: ChatViewsDeps) {
    this.forms = new RequestForms(deps.service);
    this.home = new HomeViews({ service: deps.service, store: deps.store, clock: deps.clock, ...(deps.homeLimits ? { limits: deps.homeLimits } : {}) });
  }

  /** What the request form may offer `principal` (see RequestForms.requestForm). */
  requestForm(principal: PrincipalId, platform: string, selected?: FormSelection): RequestFormModel {
    return this.forms.requestForm(principal, platform, selected);
  }

  /** Runs the typed command's use case on the form's values; its reply, or errors by field (nothing created). */
  submitForm(principal: PrincipalId, platform: string, values: FormValues, origin?: Omit<RequestOrigin, 'via'>): Promise<SubmitResult> {
    return this.forms.submitForm(principal, platform, values, origin);
  }

  /** A typeahead's options: requestable targets matching `query`. */
  searchTargets(principal: PrincipalId, query: string, limit?: number): TargetChoice[] {
    return this.forms.searchTargets(principal, query, limit);
  }

  homeView(principal: PrincipalId, platform: string): Promise<HomeModel> {
    return this.home.homeView(principal, platform);
  }
}
