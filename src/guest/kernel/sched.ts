/**
 * The scheduler: one run queue per vCPU, placement of new tasks on the least
 * busy vCPU, round-robin time slices (a task's body runs until it yields),
 * the context switch (a kernel entry, then switch_mm), blocking on a child's
 * exit and waking the waiters.
 *
 * Rules: tasks never migrate between vCPUs; vCPUs take turns one slice at a
 * time in index order, so the interleaving depends on the workload alone;
 * a task is switched to only on its own vCPU, and only there does its body
 * run; the balloon worker (balloon.ts), if any, runs before each round of
 * slices, on whichever vCPU ran last.
 */

import { balloonWork } from './balloon.js';
import { kfetch } from './kmem.js';
import { ENTRY_SCHEDULE, type KernelState, type Task, type TaskBody, type VcpuState } from './state.js';
import { switchMm } from './tlb.js';

/** The vCPU with the shortest run queue (the first of equals). */
export function pickVcpu(k: KernelState): number {
  let best = 0;
  for (let v = 1; v < k.vcpus.length; v++) {
    if ((k.vcpus[v] as VcpuState).queue.length < (k.vcpus[best] as VcpuState).queue.length) best = v;
  }
  return best;
}

/** Start `t` running `body` on its vCPU's queue. */
export function enqueue(k: KernelState, t: Task, body: (t: Task) => TaskBody): void {
  t.body = body(t);
  k.tasks.add(t);
  (k.vcpus[t.vcpu] as VcpuState).queue.push(t);
}

/** Take `t` (now dead) off its vCPU and run queue. */
export function dequeue(k: KernelState, t: Task): void {
  const st = k.vcpus[t.vcpu] as VcpuState;
  st.current = null;
  st.queue.splice(st.queue.indexOf(t), 1);
  k.tasks.delete(t);
}

/** Wake the tasks blocked waiting for `t`. */
export function wakeWaiters(k: KernelState, t: Task): void {
  for (const w of k.tasks) {
    if (w.state === 'blocked' && w.waitingFor === t) {
      w.state = 'runnable';
      w.waitingFor = null;
    }
  }
}

/**
 * Run every task until all have exited: each vCPU in turn runs its next
 * runnable task for one time slice. A task whose body returns or that was
 * killed goes to `exit`. With `untilOps`, stop (returning false) once the
 * port has run that many operations. True when every task has exited.
 */
export function runTasks(
  k: KernelState,
  exit: (t: Task) => void,
  onSlice: (() => void) | undefined,
  untilOps: number,
): boolean {
  for (;;) {
    if (k.port.ops >= untilOps) return false;
    if (k.balloon !== null) balloonWork(k);
    let ran = false;
    let alive = false;
    for (let v = 0; v < k.vcpus.length; v++) {
      const st = k.vcpus[v] as VcpuState;
      if (st.queue.length === 0) continue;
      alive = true;
      const t = nextRunnable(st);
      if (t === null) continue;
      ran = true;
      runSlice(k, exit, v, t);
      onSlice?.();
    }
    if (!alive) return true;
    if (!ran) throw new Error('guest kernel: every task is blocked (deadlock in the workload)');
  }
}

function nextRunnable(st: VcpuState): Task | null {
  for (let i = 0; i < st.queue.length; i++) {
    const t = st.queue.shift() as Task;
    st.queue.push(t);
    if (t.state === 'runnable') return t;
  }
  return null;
}

function runSlice(k: KernelState, exit: (t: Task) => void, v: number, t: Task): void {
  const p = k.port;
  if (p.cpu.index !== v) p.selectCpu(v);
  const st = k.vcpus[v] as VcpuState;
  // Context switches are counted as perf counts them: each time a task leaves its CPU (preempted, blocked, exited).
  if (st.current !== t) {
    kfetch(k, ENTRY_SCHEDULE);
    if (st.current !== null && !st.switchedOut) {
      k.counters.contextSwitches++;
      k.counters.contextSwitchesPreempted++;
    }
    st.current = t;
    switchMm(k, t.mm);
  }
  st.switchedOut = false;
  const r = (t.body as TaskBody).next();
  if (t.state === 'dead') {
    switchOut(k, st, t);
    return;
  }
  if (r.done === true || t.killed) {
    switchOut(k, st, t);
    exit(t);
    return;
  }
  const y = r.value;
  if (y !== undefined && y.wait.state !== 'dead') {
    t.state = 'blocked';
    t.waitingFor = y.wait;
    switchOut(k, st, t);
  }
}

/** `t` blocked or exited (dequeued: current is null then): it leaves its CPU now, counted once whatever runs next. */
function switchOut(k: KernelState, st: VcpuState, t: Task): void {
  if ((st.current === t || st.current === null) && !st.switchedOut) {
    k.counters.contextSwitches++;
    st.switchedOut = true;
  }
}
