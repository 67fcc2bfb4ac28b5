// The GPU worker's entry: it owns the WebGPU device and speaks protocol.ts with the page.
import { createBrowserGpu } from '../gpu/browser';
import { serve } from './serve';

serve(self, createBrowserGpu);
