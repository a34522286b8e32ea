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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .target(name: "TradewireJSON"),
        .target(
            name: "TradewireBus",
            dependencies: [
                "TradewireJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
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
            ]
        ),
        .executableTarget(
            name: "TradewireBenchmarks",
            dependencies: ["TradewireJSON", "TradewireBus", "TradewireTrading", "TradewirePipeline"],
            path: "Benchmarks/TradewireBenchmarks"
        ),
        .testTarget(name: "TradewireJSONTests", dependencies: ["TradewireJSON"]),
        .testTarget(name: "TradewireBusTests", dependencies: ["TradewireBus"]),
        .testTarget(
            name: "TradewireTradingTests",
            dependencies: ["TradewireTrading"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "TradewirePipelineTests",
            dependencies: ["TradewirePipeline", "TradewireBus", "TradewireTrading"]
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
