# Installation (GNUInstallDirs): `cmake --install` and the Debian packages (packaging/debian).
#
#   <sbindir>/ewtpd, <bindir>/ewtpctl, their manual pages (packaging/man)
#   <libdir>/libewtp.so.1 (version script sdk/libewtp.map), <includedir>/ewtp/*.h,
#   <libdir>/pkgconfig/ewtp.pc, <libdir>/cmake/ewtp/ (ewtpConfig.cmake, its version file and
#   ewtpTargets.cmake: ewtp::ewtp, ewtp_add_plugin(), ewtp_add_code_tables())
#   <libdir>/ewtp/plugins-<ABI major>/ewtp-<cc>.so (the daemon's default plugin_dir)
#   <datadir>/ewtp/plugin-template/ (what `ewtpctl plugin new` copies, buildable on its own)
#   systemd unit, sysusers.d and tmpfiles.d entries, <sysconfdir>/ewtpd/ewtpd.conf (minimal,
#   packaging/ewtpd.conf) and conf/ewtpd.conf as <datadir>/doc/ewtpd/examples/ewtpd.conf.
# The simulators (ewtp-sim, libewtp-sim, ewtp-sim-<cc>.so) are never installed: they read the
# reference folder beside the source tree.
#
# Included twice from the top-level CMakeLists.txt: first for the directories (before the
# subdirectories: ewtp_add_plugin installs each plugin it builds), then with
# EWTP_INSTALL_RULES set, after them, for the rules that name targets.

if(NOT EWTP_INSTALL_RULES)
  include(GNUInstallDirs)
  # The ABI major names the plugin directory: a host of major 2 never sees major 1 plugins.
  file(STRINGS ${CMAKE_SOURCE_DIR}/sdk/include/ewtp/abi.h ewtp_abi_major_line
       REGEX "^#define EWTP_ABI_MAJOR [0-9]+")
  string(REGEX REPLACE ".* ([0-9]+)$" "\\1" EWTP_ABI_MAJOR "${ewtp_abi_major_line}")
  set(EWTP_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/ewtp/plugins-${EWTP_ABI_MAJOR})
  if(IS_ABSOLUTE ${EWTP_PLUGIN_INSTALL_DIR})
    set(EWTP_PLUGIN_INSTALL_FULL_DIR ${EWTP_PLUGIN_INSTALL_DIR})
  else()
    set(EWTP_PLUGIN_INSTALL_FULL_DIR ${CMAKE_INSTALL_PREFIX}/${EWTP_PLUGIN_INSTALL_DIR})
  endif()
  # Built in the tree but not installed: the template's test destination ZZ.
  set(EWTP_PLUGINS_NOT_INSTALLED zz CACHE STRING "Plugins (NAME of ewtp_add_plugin) not installed")
  # systemd's own folders when installing into /usr (pkg-config systemd), else under the prefix.
  set(ewtp_unit_dir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
  set(ewtp_sysusers_dir ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d)
  set(ewtp_tmpfiles_dir ${CMAKE_INSTALL_PREFIX}/lib/tmpfiles.d)
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    pkg_get_variable(ewtp_pc_unit_dir systemd systemdsystemunitdir)
    pkg_get_variable(ewtp_pc_sysusers_dir systemd sysusersdir)
    pkg_get_variable(ewtp_pc_tmpfiles_dir systemd tmpfilesdir)
    foreach(d unit sysusers tmpfiles)
      if(ewtp_pc_${d}_dir)
        set(ewtp_${d}_dir ${ewtp_pc_${d}_dir})
      endif()
    endforeach()
  endif()
  set(EWTP_SYSTEMD_UNIT_DIR ${ewtp_unit_dir} CACHE PATH "Where the systemd unit is installed")
  set(EWTP_SYSUSERS_DIR ${ewtp_sysusers_dir} CACHE PATH "Where the sysusers.d entry is installed")
  set(EWTP_TMPFILES_DIR ${ewtp_tmpfiles_dir} CACHE PATH "Where the tmpfiles.d entry is installed")
  return()
endif()

include(CMakePackageConfigHelpers)

# The installed daemon and ewtpctl look for plugins where the packages put them (a build tree's
# binaries still find ../plugins first: daemon/conf/config.c).
target_compile_definitions(ewtp-conf PRIVATE
  EWTP_SYSTEM_PLUGIN_DIR="${EWTP_PLUGIN_INSTALL_FULL_DIR}")

install(TARGETS ewtpd DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT daemon)
install(TARGETS ewtpctl DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/man/ewtpd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
  COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/man/ewtpctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  COMPONENT daemon)

# libewtp: the runtime (soname libewtp.so.1) and, for plugin builds, the link name, headers,
# pkg-config file and the CMake package.
install(TARGETS ewtp EXPORT ewtpTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/sdk/include/ewtp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.h" PATTERN "sim.h" EXCLUDE)
install(FILES ${CMAKE_BINARY_DIR}/sdk/ewtp.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

set(ewtp_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ewtp)
install(EXPORT ewtpTargets NAMESPACE ewtp:: DESTINATION ${ewtp_cmake_dir} COMPONENT dev)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ewtpConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/ewtpConfig.cmake INSTALL_DESTINATION ${ewtp_cmake_dir}
  PATH_VARS EWTP_PLUGIN_INSTALL_DIR)
# The package version is the project's; plugins state the ABI they need in their descriptor.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/ewtpConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/ewtpConfig.cmake
              ${CMAKE_BINARY_DIR}/cmake/ewtpConfigVersion.cmake
              ${CMAKE_SOURCE_DIR}/cmake/ewtp-plugin.cmake ${CMAKE_SOURCE_DIR}/cmake/ewtp-codes.cmake
  DESTINATION ${ewtp_cmake_dir} COMPONENT dev)

# The plugin template, minus what only the source tree can build (the simulator needs
# libewtp-sim, which is not installed; zz_sim.c stays so that `plugin new` copies it).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/plugins/template/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/ewtp/plugin-template COMPONENT dev)

# The service: unit, system user, folders, configuration.
# The unit names /usr/sbin/ewtpd, /usr/bin/ewtpctl and /etc/ewtpd: under another prefix, the
# installed copy names where those went.
set(ewtp_unit ${CMAKE_SOURCE_DIR}/packaging/systemd/ewtpd.service)
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  file(READ ${ewtp_unit} ewtp_unit_text)
  string(REPLACE "/usr/sbin/ewtpd" "${CMAKE_INSTALL_FULL_SBINDIR}/ewtpd" ewtp_unit_text "${ewtp_unit_text}")
  string(REPLACE "/usr/bin/ewtpctl" "${CMAKE_INSTALL_FULL_BINDIR}/ewtpctl" ewtp_unit_text "${ewtp_unit_text}")
  string(REPLACE "/etc/ewtpd/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/ewtpd/" ewtp_unit_text "${ewtp_unit_text}")
  set(ewtp_unit ${CMAKE_BINARY_DIR}/packaging/ewtpd.service)
  file(CONFIGURE OUTPUT ${ewtp_unit} CONTENT "${ewtp_unit_text}" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
               ${CMAKE_SOURCE_DIR}/packaging/systemd/ewtpd.service)
endif()
install(FILES ${ewtp_unit} DESTINATION ${EWTP_SYSTEMD_UNIT_DIR} COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/ewtpd.sysusers RENAME ewtpd.conf
  DESTINATION ${EWTP_SYSUSERS_DIR} COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/ewtpd.tmpfiles RENAME ewtpd.conf
  DESTINATION ${EWTP_TMPFILES_DIR} COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/ewtpd.conf
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ewtpd COMPONENT daemon)
install(FILES ${CMAKE_SOURCE_DIR}/conf/ewtpd.conf
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ewtpd/examples COMPONENT daemon)
