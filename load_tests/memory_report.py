"""The markdown of entry_memory_bench.py: bytes per cached answer, by Redis key and by search index."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
# FT.INFO memory fields (MB), per index.
FT_FIELDS = (
    "vector_index_sz_mb",
    "inverted_sz_mb",
    "offset_vectors_sz_mb",
    "tag_overhead_sz_mb",
    "text_overhead_sz_mb",
    "doc_table_size_mb",
    "sortable_values_size_mb",
    "key_table_size_mb",
    "total_index_memory_sz_mb",
)


@dataclass(frozen=True, slots=True)
class Measurement:
    entries: int
    inserts_per_s: float
    used_memory_growth: int  # bytes, INFO memory used_memory after - before
    key_bytes: dict[str, float]  # mean MEMORY USAGE per key kind
    indexes: dict[str, dict[str, float]]  # index → FT.INFO num_docs and memory fields (MB)


def per_entry(m: Measurement, index: str, field: str) -> float:
    return m.indexes[index].get(field, 0.0) * MB / m.entries


def markdown(command: str, facts: dict[str, str], results: list[Measurement]) -> str:
    lines = ["# Redis memory per cached answer", "", "Command:", "", "```sh", command, "```", ""]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    lines += ["", "## Per entry (bytes)", "", summary_header(results)]
    lines += [summary_line(m) for m in results]
    lines += [
        "",
        "Total: Redis `used_memory` growth over the load / entries. Keys: mean `MEMORY USAGE` (SAMPLES 0) of about "
        "200 sampled keys of each kind. Indexes: FT.INFO `vector_index_sz_mb` / entries, and "
        "`total_index_memory_sz_mb` / entries (which leaves the vector index out: it is the sum of the inverted "
        "index, tag and text overhead, doc and key tables). Keys plus indexes fall short of the total: the key "
        "space's own tables, expiry entries and allocator overhead are in the total only.",
        "",
        "## FT.INFO memory fields, bytes per entry",
        "",
        "| entries | index | num_docs | " + " | ".join(FT_FIELDS) + " |",
        "|---:|---|---:|" + "---:|" * len(FT_FIELDS),
    ]
    for m in results:
        for index, info in m.indexes.items():
            cells = [f"{per_entry(m, index, field):,.0f}" for field in FT_FIELDS]
            lines.append(f"| {m.entries:,} | {index} | {info.get('num_docs', 0):,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_header(results: list[Measurement]) -> str:
    kinds = list(results[0].key_bytes) if results else []
    heads = ["entries", "inserts/s", "total B/entry", *(f"{kind} B" for kind in kinds)]
    heads += ["L2 vector index B/entry", "L2 other index B/entry", "catalog index B/entry"]
    return "| " + " | ".join(heads) + " |\n|" + "---:|" * len(heads)


def summary_line(m: Measurement) -> str:
    cells = [f"{m.entries:,}", f"{m.inserts_per_s:,.0f}", f"{m.used_memory_growth / m.entries:,.0f}"]
    cells += [f"{value:,.0f}" for value in m.key_bytes.values()]
    cells += [
        f"{per_entry(m, 'L2', 'vector_index_sz_mb'):,.0f}",
        f"{per_entry(m, 'L2', 'total_index_memory_sz_mb'):,.0f}",
        f"{per_entry(m, 'catalog', 'total_index_memory_sz_mb'):,.0f}",
    ]
    return "| " + " | ".join(cells) + " |"
