import type { HttpPhase, RenderedAnswer } from '../phases.js';

/** A route that Portico answers itself (`redirect`, `respond`): the answer compiled at load, no server involved. */
export class RouteAnswerPhase implements HttpPhase {
  readonly name = 'route-answer';
  constructor(readonly answer: RenderedAnswer) {}

  onRequest(): RenderedAnswer {
    return this.answer;
  }
}
