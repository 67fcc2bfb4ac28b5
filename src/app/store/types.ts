// The store's combined type and the slice-creator signature shared by every slice.
import type { StateCreator } from 'zustand';
import type { EngineSlice } from './engine-slice';
import type { GpuSlice } from './gpu-slice';
import type { MetricsSlice } from './metrics-slice';
import type { TrainingSlice } from './training-slice';

export type StudioState = GpuSlice & EngineSlice & TrainingSlice & MetricsSlice;

export type SliceCreator<T> = StateCreator<StudioState, [['zustand/persist', unknown]], [], T>;
