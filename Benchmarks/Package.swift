// swift-tools-version:6.1

import PackageDescription

// The benchmarks, apart from the main build (`make test` never builds them): the in-process
// publish path under ordo-one/benchmark (Benchmarks/BusPublish; `make bench`, and
// `make bench-check` against Thresholds/), and `TradewireBenchmarks`, the load generator and
// timers behind the rest of the `make bench` table. See README.md here.
let package = Package(
    name: "TradewireBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tradewire", path: ".."),
        // MallocInterposer alone: allocation counts without the Swift 6.3 Linux runtime
        // interposer (the ARC metrics it serves are not used here).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // ordo-one/benchmark suites: one executable per directory under Benchmarks/.
        .executableTarget(
            name: "BusPublish",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TradewireBus", package: "tradewire"),
                .product(name: "TradewireJSON", package: "tradewire"),
            ],
            path: "Benchmarks/BusPublish",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Not an ordo suite (its directory is not under Benchmarks/, so `swift package
        // benchmark` leaves it alone): socket load, stage codec, metrics cost, iterations.
        .executableTarget(
            name: "TradewireBenchmarks",
            dependencies: [
                "TradewireJSON", "TradewireBus", "TradewireTrading", "TradewirePipeline", "TradewireClient",
                "TradewireTesting", "TradewireRPC",
            ].map { .product(name: $0, package: "tradewire") } + [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/TradewireBenchmarks"
        ),
    ]
)

// The root package's strict settings.
for target in package.targets where target.type == .executable {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
