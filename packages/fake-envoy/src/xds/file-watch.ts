// How Envoy notices a new file-based xDS file (`PathConfigSource`):
//
// - with `watched_directory`: any file *moved into* that directory (inotify IN_MOVED_TO)
//   reloads the subscription's path, whatever the moved file's name;
// - without: only a move onto the path itself does.
//
// Writing a file in place (truncate + write) is never noticed: the config must be written to
// a temporary file and renamed, which is also what keeps Envoy from reading half a file.
//
// Node's fs.watch reports inotify's create, delete and both halves of a move alike as
// "rename", so a move in is recognised as a "rename" event after which the name points at a
// different inode than before. One difference from Envoy remains: a file *created* (not
// moved) in a watched directory also counts, so a temporary file created there before the
// rename can add a refresh. Events within a few milliseconds are coalesced into one
// refresh, which usually absorbs that extra one; counters may still run a little ahead of
// Envoy's, versions and rejections never differ.
import { lstatSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, join } from "node:path";

export interface MovedToWatchOptions {
  /** The file the subscription reads. */
  path: string;
  /** `watched_directory.path`, if set. */
  watchedDirectory?: string;
  onMovedTo: () => void;
  /** Coalesce events closer together than this (default 25 ms). */
  coalesceMs?: number;
}

export class WatchSetupError extends Error {
  override name = "WatchSetupError";
}

const inodeOf = (path: string): string | undefined => {
  try {
    const stat = lstatSync(path);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return undefined;
  }
};

export class MovedToWatch {
  private readonly watcher: FSWatcher;
  private readonly inodes = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MovedToWatchOptions) {
    const dir = options.watchedDirectory ?? dirname(options.path);
    const only = options.watchedDirectory === undefined ? basename(options.path) : undefined;
    const coalesceMs = options.coalesceMs ?? 25;
    if (only !== undefined) {
      const inode = inodeOf(options.path);
      if (inode) this.inodes.set(only, inode);
    }
    try {
      this.watcher = watch(dir, { persistent: false }, (event, filename) => {
        if (event !== "rename" || !filename) return;
        const name = filename.toString();
        if (only !== undefined && name !== only) return;
        const inode = inodeOf(join(dir, name));
        if (inode === undefined) {
          this.inodes.delete(name);
          return;
        }
        if (this.inodes.get(name) === inode) return;
        this.inodes.set(name, inode);
        if (this.timer) return;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          options.onMovedTo();
        }, coalesceMs);
      });
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "No such file or directory" : (error as Error).message;
      throw new WatchSetupError(`unable to add filesystem watch for file ${options.watchedDirectory ? `${dir}/` : options.path}: ${why}`);
    }
    this.watcher.on("error", () => {});
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.watcher.close();
  }
}
