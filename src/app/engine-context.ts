// Hands the Engine (the user's worker intents) to components without a global import.
import { createContext, useContext } from 'react';
import type { Engine } from './engine';

export const EngineContext = createContext<Engine | null>(null);

export function useEngine(): Engine {
  const e = useContext(EngineContext);
  if (!e) throw new Error('useEngine outside <EngineContext.Provider>');
  return e;
}
