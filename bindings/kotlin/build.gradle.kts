// Android library module for Sealpost (documented, not built by the
// project's CI: no Android SDK there). Before a Gradle build, run
// ./build-android.sh: it puts the generated Kotlin under
// src/main/kotlin/ and libsealpost_ffi.so for each ABI under
// src/main/jniLibs/<abi>/. The JVM tests in src/test/kotlin are run by
// bindings/test.sh with kotlinc, JNA and JUnit 5 directly.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "sealpost"
    compileSdk = 35
    // NDK r28+ links 16 KB-aligned ELF segments by default, which Android 15+
    // devices with 16 KB pages need (Play requires it for new apps).
    ndkVersion = "28.0.13004108"

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The AAR carries JNA's own native dispatch library for every ABI.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
}
