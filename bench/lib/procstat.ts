// Reading CPU time and memory of process groups, and the machine's CPU
// counters, from /proc (Linux only).
import * as fs from "fs";

export const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

interface ProcEntry {
    pid: number;
    ppid: number;
    pgrp: number;
    ticks: number; // utime + stime of all the process's threads
}

function readStat(pid: number): ProcEntry | undefined {
    try {
        const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // The command name may contain spaces and parentheses: fields start after the last ")".
        const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
        return { pid, ppid: Number(fields[1]), pgrp: Number(fields[2]), ticks: Number(fields[11]) + Number(fields[12]) };
    } catch {
        return undefined; // exited meanwhile
    }
}

function allProcesses(): ProcEntry[] {
    const entries: ProcEntry[] = [];
    for (const name of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(name)) continue;
        const entry = readStat(Number(name));
        if (entry) entries.push(entry);
    }
    return entries;
}

/** Pids of every process in the given process groups. */
export function pidsOfGroups(pgids: number[]): number[] {
    const wanted = new Set(pgids);
    return allProcesses()
        .filter((p) => wanted.has(p.pgrp))
        .map((p) => p.pid);
}

/** CPU seconds used so far by each process group (live processes only). */
export function cpuSecondsOfGroups(pgids: number[]): Map<number, number> {
    const totals = new Map<number, number>(pgids.map((g) => [g, 0]));
    for (const p of allProcesses()) {
        if (totals.has(p.pgrp)) totals.set(p.pgrp, totals.get(p.pgrp)! + p.ticks / CLOCK_TICKS_PER_SECOND);
    }
    return totals;
}

/** Busy and total CPU seconds of the whole machine (all cores) since boot. */
export function machineCpuSeconds(): { busy: number; total: number } {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const busy = user + nice + system + irq + softirq + steal;
    return { busy: busy / CLOCK_TICKS_PER_SECOND, total: (busy + idle + iowait) / CLOCK_TICKS_PER_SECOND };
}

export interface GroupMemory {
    processes: number;
    /** Sum of proportional set sizes: shared pages are split between the processes sharing them. */
    pssKiB: number;
    /** Sum of resident set sizes: shared pages counted once per process (an upper bound). */
    rssKiB: number;
    /** Sum of private (unshared) pages. */
    privateKiB: number;
}

/** Memory of all processes of a process group, from /proc/<pid>/smaps_rollup. */
export function memoryOfGroup(pgid: number): GroupMemory {
    const memory: GroupMemory = { processes: 0, pssKiB: 0, rssKiB: 0, privateKiB: 0 };
    for (const pid of pidsOfGroups([pgid])) {
        let text: string;
        try {
            text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
        } catch {
            continue;
        }
        const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
        memory.processes += 1;
        memory.pssKiB += field("Pss");
        memory.rssKiB += field("Rss");
        memory.privateKiB += field("Private_Clean") + field("Private_Dirty");
    }
    return memory;
}
