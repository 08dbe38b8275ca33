/* A grid over ranks (issue 15 (a)): one part file per run under
 * results/<exp>.parts/, claimed by a lock, merged into results/<exp>.h5 by
 * world rank 0. Placeholder: filled by the grid-over-ranks work. */
#ifndef CBNN_PARTS_H
#define CBNN_PARTS_H

#endif
