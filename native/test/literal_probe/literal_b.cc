// Half of the literal probe: the same literal as literal_a.cc, in another
// translation unit.
const char* literal_probe_b() { return "boxlite-layout literal probe"; }
