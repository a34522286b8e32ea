// swift-tools-version:6.0

import PackageDescription

let package = Package(
    name: "tradewire",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TradewireJSON", targets: ["TradewireJSON"]),
        .library(name: "TradewireBus", targets: ["TradewireBus"]),
        .library(name: "TradewireTrading", targets: ["TradewireTrading"]),
        .library(name: "TradewirePipeline", targets: ["TradewirePipeline"]),
        .library(name: "TradewireRPC", targets: ["TradewireRPC"]),
        .library(name: "TradewireServer", targets: ["TradewireServer"]),
        .library(name: "TradewireClient", targets: ["TradewireClient"]),
        .library(name: "TradewireTesting", targets: ["TradewireTesting"]),
        .library(name: "TradewireJournal", targets: ["TradewireJournal"]),
        .library(name: "TradewireHTTP", targets: ["TradewireHTTP"]),
        .library(name: "TradewireCluster", targets: ["TradewireCluster"]),
        .executable(name: "tradewired", targets: ["tradewired"]),
        .executable(name: "tradewire", targets: ["tradewire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(name: "TradewireJSON"),
        .target(
            name: "TradewireBus",
            dependencies: [
                "TradewireJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "TradewireTrading",
            dependencies: [
                "TradewireJSON",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TradewirePipeline",
            dependencies: [
                "TradewireJSON",
                "TradewireBus",
                "TradewireTrading",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "TradewireJournal",
            dependencies: [
                "TradewireBus", "TradewireJSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TradewireCluster",
            dependencies: [
                "TradewireBus", "TradewireJSON",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "TradewireRPC", dependencies: ["TradewireJSON"]),
        .target(
            name: "TradewireServer",
            dependencies: [
                "TradewireJSON", "TradewireBus", "TradewireTrading", "TradewirePipeline", "TradewireRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "TradewireHTTP",
            dependencies: [
                "TradewireServer", "TradewireBus", "TradewirePipeline", "TradewireTrading", "TradewireJSON",
                "TradewireRPC",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            resources: [.embedInCode("Dashboard/dashboard.html")]
        ),
        .target(
            name: "TradewireClient",
            dependencies: [
                "TradewireJSON", "TradewireRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TradewireTesting",
            dependencies: [
                "TradewireJSON", "TradewireServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // jemalloc (Debian's libjemalloc-dev) serves the daemon's malloc: the README says why.
        .systemLibrary(name: "CJemalloc", pkgConfig: "jemalloc", providers: [.apt(["libjemalloc-dev"])]),
        .executableTarget(
            name: "tradewired",
            dependencies: [
                "TradewireServer", "TradewirePipeline", "TradewireTrading", "TradewireBus", "TradewireJournal",
                "TradewireHTTP", "TradewireCluster", "CJemalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tradewire",
            dependencies: [
                "TradewireClient", "TradewireJSON", "TradewireRPC", "TradewireJournal", "TradewireBus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "TradewireJSONTests", dependencies: ["TradewireJSON"]),
        .testTarget(
            name: "TradewireBusTests",
            dependencies: ["TradewireBus", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "TradewireRPCTests", dependencies: ["TradewireRPC", "TradewireTesting"]),
        .testTarget(
            name: "TradewireJournalTests",
            dependencies: [
                "TradewireJournal", "TradewireBus", "TradewireJSON", .product(name: "Logging", package: "swift-log"),
                // Tests reach into the database (a trigger that makes an insert fail).
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "TradewireClusterTests",
            dependencies: [
                "TradewireCluster", "TradewireBus", "TradewireJSON",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TradewireCLITests",
            dependencies: [
                "TradewireJSON", "TradewireJournal", "TradewireBus", "TradewireTesting",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TradewireServerTests",
            dependencies: [
                "TradewireServer", "TradewireClient", "TradewireRPC", "TradewirePipeline", "TradewireBus",
                "TradewireTrading", "TradewireJSON", "TradewireTesting", "TradewireJournal",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TradewireHTTPTests",
            dependencies: [
                "TradewireHTTP", "TradewireServer", "TradewireBus", "TradewireJSON", "TradewirePipeline",
                "TradewireTrading",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TradewireTradingTests",
            dependencies: ["TradewireTrading"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "TradewirePipelineTests",
            dependencies: [
                "TradewirePipeline", "TradewireBus", "TradewireTrading", "TradewireJSON",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

// Strict settings on every target (the swift-log / hummingbird pattern).
for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
