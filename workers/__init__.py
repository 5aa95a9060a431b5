"""Workers: Ray and Ray Tune glue that trains supernets and evaluates, measures and exports sub-networks."""
