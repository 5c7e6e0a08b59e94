"""Issue 17's benchmark: a long video unsplit on one pinned worker vs split on two, the split and stitch
overhead, and the scaling curve `framequeue.scaling.simulate.split_wall_s` predicts from them."""
