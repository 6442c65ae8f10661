// swift-tools-version:5.9
// Sealpost for iOS and macOS: the uniffi-generated Swift over the Rust core,
// linked as an XCFramework of static libraries. Run build-xcframework.sh on
// a Mac first; it generates Sources/Sealpost/Sealpost.swift and
// SealpostFFI.xcframework. (Not built on the project's Linux CI: no Swift
// compiler there. The generated files are checked by bindings/test.sh.)
import PackageDescription

let package = Package(
    name: "Sealpost",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Sealpost", targets: ["Sealpost"]),
    ],
    targets: [
        .binaryTarget(name: "SealpostFFI", path: "SealpostFFI.xcframework"),
        .target(
            name: "Sealpost",
            dependencies: ["SealpostFFI"],
            path: "Sources/Sealpost"
        ),
    ]
)
