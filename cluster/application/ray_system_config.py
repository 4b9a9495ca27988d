"""The Ray system config of every cluster this project starts, and why each setting is there.

- `automatic_object_spilling_enabled: false`: objects (camera frames, face crops, embeddings) are
  never written to disk; see `object_memory.py`.
- `max_direct_call_object_size`: task arguments and results up to this size travel inline, from
  worker to worker in the call itself, instead of through the node's shared-memory object store.
  Ray's default (100 KiB) sends every camera frame (a 640x360 RGB frame is 675 KiB) through the
  store twice, camera to forwarder and forwarder to face replica: each time an object is created,
  sealed, pinned and released by the raylet. Inline, the raylet does none of that: on 2 cores
  Ray's own processes used about half the CPU per frame and the pipeline gained 5-11% frames/s
  (docs/benchmarks.md, "Frames inline"). Frames larger than this (1080p is 6 MiB) still go through
  the store, in memory as before. Ray caps the inlined arguments of one call at 10 MiB
  (`task_rpc_inlined_bytes_limit`), so a request of four 640x360 frames is inlined whole.
"""

INLINE_OBJECT_BYTES = 4 * 1024 * 1024
"""Arguments and results up to this size are passed inline (Ray's `max_direct_call_object_size`)."""

SYSTEM_CONFIG: dict[str, bool | int] = {
    "automatic_object_spilling_enabled": False,
    "max_direct_call_object_size": INLINE_OBJECT_BYTES,
}
"""Given as `ray.init(_system_config=...)` or `ray start --head --system-config` to every cluster we start."""
