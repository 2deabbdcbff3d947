"""remaster: turn old video into clean HD masters with AI upscalers.

The package holds the logic; `workflow/scripts/*.py` are thin Snakemake adapters over it. Nothing in the
package imports Snakemake, and modules imported at workflow parse time (`settings`, `media`, `shards`,
`source`) import no torch.
"""

__version__ = "0.1.0"
