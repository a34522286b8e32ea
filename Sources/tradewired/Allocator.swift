import CJemalloc

#if canImport(Glibc)
    import Glibc
#endif

/// The allocator behind the daemon's `malloc`: jemalloc, linked in (the README's "Why
/// jemalloc" says why), reported at start-up.
enum Allocator {
    /// `jemalloc 5.3.0-…` when jemalloc serves `malloc`; otherwise what answers instead (the C
    /// library's, should the link order ever put it first).
    static var description: String {
        guard let version = jemallocVersion else { return "libc" }
        return servedByJemalloc() ? "jemalloc \(version)" : "libc (jemalloc \(version) linked but not serving malloc)"
    }

    private static var jemallocVersion: String? {
        var version: UnsafePointer<CChar>? = nil
        var size = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &size, nil, 0) == 0, let version else { return nil }
        return String(cString: version)
    }

    /// True when the process's `malloc` (the first one the dynamic linker finds, which every
    /// library's calls resolve to) is jemalloc's own.
    private static func servedByJemalloc() -> Bool {
        guard let jemalloc = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD) else { return false }
        defer { dlclose(jemalloc) }
        // A null handle is RTLD_DEFAULT: the global lookup.
        guard let global = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc"),
            let own = dlsym(jemalloc, "malloc")
        else { return false }
        return global == own
    }
}
