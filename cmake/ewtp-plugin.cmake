# Code tables from data files: ewtp_add_code_tables() (see there).
include(${CMAKE_CURRENT_LIST_DIR}/ewtp-codes.cmake)

# ewtp_add_plugin(NAME cc SOURCES ... [SIM_SOURCES ...])
# Builds plugins/<cc> into ${EWTP_PLUGIN_OUTPUT_DIR}/ewtp-<cc>.so exporting only the
# descriptor symbol, linked against libewtp alone; SIM_SOURCES build ewtp-sim-<cc>.so where
# libewtp-sim is built (the source tree; never installed). `cmake --install` puts the plugin
# into ${EWTP_PLUGIN_INSTALL_DIR} (unless NAME is in EWTP_PLUGINS_NOT_INSTALLED).
# Also installed with the SDK (find_package(ewtp), cmake/ewtpConfig.cmake.in).
function(ewtp_add_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES;SIM_SOURCES" ${ARGN})
  add_library(ewtp-${P_NAME} MODULE ${P_SOURCES})
  set_target_properties(ewtp-${P_NAME} PROPERTIES PREFIX "" OUTPUT_NAME ewtp-${P_NAME}
    LIBRARY_OUTPUT_DIRECTORY ${EWTP_PLUGIN_OUTPUT_DIR} C_VISIBILITY_PRESET hidden)
  target_link_libraries(ewtp-${P_NAME} PRIVATE ewtp::ewtp)
  target_include_directories(ewtp-${P_NAME} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  if(EWTP_PLUGIN_INSTALL_DIR AND NOT P_NAME IN_LIST EWTP_PLUGINS_NOT_INSTALLED)
    install(TARGETS ewtp-${P_NAME} LIBRARY DESTINATION ${EWTP_PLUGIN_INSTALL_DIR}
            COMPONENT plugin-${P_NAME})
  endif()
  if(EWTP_Z_DEFS)
    # Sanitizer runtimes come from the executable, so -z defs only without them.
    target_link_options(ewtp-${P_NAME} PRIVATE -Wl,-z,defs)
  endif()
  if(P_SIM_SOURCES AND TARGET ewtp-sim-lib)
    add_library(ewtp-sim-${P_NAME} MODULE ${P_SIM_SOURCES})
    set_target_properties(ewtp-sim-${P_NAME} PROPERTIES PREFIX "" OUTPUT_NAME ewtp-sim-${P_NAME}
      LIBRARY_OUTPUT_DIRECTORY ${EWTP_PLUGIN_OUTPUT_DIR} C_VISIBILITY_PRESET hidden)
    target_link_libraries(ewtp-sim-${P_NAME} PRIVATE ewtp ewtp-sim-lib)
    target_include_directories(ewtp-sim-${P_NAME} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
endfunction()
